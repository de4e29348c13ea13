"""Fine-tuning for compatibility: a new projection head on top of the frozen backbone's item
vectors, trained with a triplet loss on triplets mined from curated outfits. The head is
type-aware: besides the shared space it learns, for every pair of categories, which of its
dimensions matter (see space.py for how the weights are served)."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbone import ImageTowerTop
from .pretrain import TrainingDiverged
from .progress import Progress, no_progress
from .space import CompatibilitySpace, PairWeights
from .triplets import Verdicts, mine_triplets, negative_pools, verdict_triplets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    input_dim: int
    output_dim: int = 128
    hidden_dim: int = 256
    category_count: int = 0  # > 0: type-aware, one weight vector per pair of categories


@dataclass(frozen=True)
class HeadTrainingConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    margin: float = 0.2
    seed: int = 0
    type_aware: bool = True
    # The shared space is trained too (plain cosine), so pairs of categories never seen
    # together in training, and image search, still get a meaningful score.
    shared_space_loss_weight: float = 0.5
    pair_weight_learning_rate_factor: float = 10.0
    image_tower_learning_rate_factor: float = 0.1
    # The tower's top trains with the head in the last epochs only: an epoch through it costs
    # ~6x a head-only one (12 s against 2 s on the Mango catalog), and starting from a
    # trained head it needs few (16 did better than 8 on new arrivals, 30 no better than 16).
    image_tower_epochs: int = 16
    # A bad pair stylists flagged counts this many times an outfit's triplet: a verdict is
    # rare and deliberate, the outfits' random negatives many and mostly easy.
    bad_pair_weight: float = 2.0
    # Wrong answers each positive is weighed against. 1: the triplet margin loss. More: a
    # softmax over the positive, its triplet's negative and `negatives - 1` more items of its
    # category (InfoNCE), drawn once per batch and category and shared by the batch's rows.
    negatives: int = 1
    temperature: float = 0.1
    # Negatives drawn as the outfits wear items (triplets.negative_pools), not every item
    # alike: else an item in no training outfit is only ever a negative, and the head learns
    # "never worn" as "goes with nothing", which new arrivals that look like it inherit.
    negatives_as_worn: bool = True


class CompatibilityHead(nn.Module):
    """Maps an item vector (image ⊕ title) into the compatibility space, where items that go
    well together are close. The linear skip keeps the backbone's geometry as a starting point."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.skip = nn.Linear(config.input_dim, config.output_dim, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(config.input_dim, config.hidden_dim),
            nn.GELU(),
            nn.Linear(config.hidden_dim, config.output_dim),
        )

        count = config.category_count
        # softplus(PAIR_LOGIT_START) = 1: every pair of categories starts as plain cosine.
        self.pair_logits = (
            nn.Parameter(torch.full((count * count, config.output_dim), PAIR_LOGIT_START))
            if count
            else None
        )

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.skip(items) + self.mlp(items), dim=-1)

    def pair_weights(self, categories: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        """Non-negative weights of each (category, other) pair, (B, output_dim), mean 1 each;
        the pair is unordered, so compatibility stays symmetric."""
        if self.pair_logits is None:
            raise ValueError("This head is not type-aware (category_count is 0).")
        count = self.config.category_count
        rows = torch.minimum(categories, others) * count + torch.maximum(categories, others)
        weights = nn.functional.softplus(self.pair_logits[rows])
        return weights / weights.mean(dim=-1, keepdim=True)

    def pair_weight_table(self, pairs: np.ndarray) -> np.ndarray:
        """Weights of the given (category, other) code pairs as an array, (P, output_dim)."""
        with torch.no_grad():
            codes = torch.from_numpy(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
            return self.pair_weights(codes[:, 0], codes[:, 1]).numpy()


PAIR_LOGIT_START = float(np.log(np.e - 1))


def category_pairs(outfits: Sequence[Sequence[int]], item_categories: np.ndarray) -> np.ndarray:
    """The (smaller, larger) category code pairs that share an outfit: those the type-aware
    weights are trained on, (P, 2) sorted."""
    pairs = {
        (min(a, b), max(a, b))
        for outfit in outfits
        for a in {int(item_categories[item]) for item in outfit}
        for b in {int(item_categories[item]) for item in outfit}
        if a != b
    }
    return np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinge on cosine similarities: the positive must beat the negative by `margin`; the
    mean over the triplets, or their `weights`' weighted mean."""
    positive_similarity = (anchor * positive).sum(dim=-1)
    negative_similarity = (anchor * negative).sum(dim=-1)
    hinge = torch.relu(margin - positive_similarity + negative_similarity)
    return hinge.mean() if weights is None else (hinge * weights).sum() / weights.sum()


def softmax_loss(
    anchor: torch.Tensor,
    candidates: torch.Tensor,
    temperature: float,
    excluded: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE: the anchor (B, D) must pick its positive, candidates[:, 0], out of candidates
    (B, K, D); `excluded` (B, K - 1) masks wrong answers that are the positive itself."""
    logits = torch.einsum("bd,bkd->bk", anchor, candidates) / temperature
    logits[:, 1:] = logits[:, 1:].masked_fill(excluded, float("-inf"))
    target = torch.zeros(len(anchor), dtype=torch.long)
    losses = nn.functional.cross_entropy(logits, target, reduction="none")
    return losses.mean() if weights is None else (losses * weights).sum() / weights.sum()


def answer_loss(
    anchor: torch.Tensor,
    answers: torch.Tensor,
    excluded: torch.Tensor,
    config: HeadTrainingConfig,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """The configured loss of anchors (B, D) against their answers (B, K, D): the positive
    first, then wrong ones (`excluded` marks those that are the positive itself)."""
    if config.negatives > 1:
        return softmax_loss(anchor, answers, config.temperature, excluded, weights)
    return triplet_loss(anchor, answers[:, 0], answers[:, 1], config.margin, weights)


def shared_negatives(
    positive_categories: np.ndarray,
    pools: dict[int, np.ndarray],
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`count` random items of each row's positive category, (B, count): one draw per category
    in the batch, shared by its rows, so a batch embeds few more items than it has triplets."""
    drawn = np.empty((len(positive_categories), count), dtype=np.int64)
    for category in np.unique(positive_categories):
        drawn[positive_categories == category] = rng.choice(pools[int(category)], size=count)
    return drawn


class ItemEncoder(nn.Module):
    """Catalog rows → item vectors (image ⊕ text). Frozen: the precomputed vectors. With the
    top of the image tower (`ImageTowerTop`) and the frozen trunk's tokens of every image, the
    image half is recomputed, and trained, through the unfrozen last blocks."""

    def __init__(
        self,
        item_vectors: np.ndarray,
        image_top: ImageTowerTop | None = None,
        trunk_tokens: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.fixed = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))
        self.image_top = image_top
        self.trunk_tokens = trunk_tokens
        if image_top is not None:
            if trunk_tokens is None or len(trunk_tokens) != len(self.fixed):
                raise ValueError("Tuning the image tower needs the trunk tokens of every item.")
            self.image_dim = int(image_top.proj.shape[1])

    @property
    def dim(self) -> int:
        return int(self.fixed.shape[1])

    def __len__(self) -> int:
        return len(self.fixed)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        if self.image_top is None or self.trunk_tokens is None:  # (both or neither: __init__)
            return self.fixed[rows]
        images = self.image_top(self.trunk_tokens[rows].float())
        return torch.cat(
            [nn.functional.normalize(images, dim=-1), self.fixed[rows, self.image_dim :]], dim=1
        )


def train_compatibility_head(
    item_vectors: np.ndarray | ItemEncoder,
    outfits: Sequence[Sequence[int]],
    item_categories: np.ndarray,
    config: HeadTrainingConfig = HeadTrainingConfig(),
    progress: Progress = no_progress,
    should_stop: Callable[[], bool] = lambda: False,
    after_epoch: Callable[[CompatibilityHead, int], None] | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
    verdicts: Verdicts | None = None,
) -> tuple[CompatibilityHead, list[float]]:
    """Train a new head (and the image tower's top, when `item_vectors` is an ItemEncoder
    with one); triplets are mined afresh every epoch (new negatives each time), with the
    stylists' `verdicts`' own (verdict_triplets; bad pairs weighted).
    `after_epoch(head, epoch)` may inspect the head between epochs (learning curves);
    `check_cancelled()` is asked before every batch and may raise to abandon the training.
    Returns the head (in eval mode) and the mean loss of every epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    items = item_vectors if isinstance(item_vectors, ItemEncoder) else ItemEncoder(item_vectors)
    category_count = int(item_categories.max()) + 1 if config.type_aware else 0
    head = CompatibilityHead(HeadConfig(input_dim=items.dim, category_count=category_count))
    categories = torch.from_numpy(np.asarray(item_categories, dtype=np.int64))
    shared = [parameter for name, parameter in head.named_parameters() if name != "pair_logits"]
    groups: list[dict] = [{"params": shared}]
    if head.pair_logits is not None:
        # One weight vector per pair gets few updates: a faster rate, and no decay toward 0.
        groups.append(
            {
                "params": [head.pair_logits],
                "lr": config.learning_rate * config.pair_weight_learning_rate_factor,
                "weight_decay": 0.0,
            }
        )
    if items.image_top is not None:
        # Pretrained blocks move gently: a large step would undo what transfer brings.
        groups.append(
            {
                "params": list(items.image_top.parameters()),
                "lr": config.learning_rate * config.image_tower_learning_rate_factor,
            }
        )
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    epoch_losses: list[float] = []
    pools = negative_pools(outfits, item_categories, config.negatives_as_worn)

    def set_training(mode: bool) -> None:
        head.train(mode)
        items.train(mode)

    set_training(True)
    # Until the tower's top starts training, its output is the precomputed image vector.
    frozen_items = ItemEncoder(items.fixed.numpy())
    first_tuned_epoch = config.epochs - config.image_tower_epochs
    for epoch in range(config.epochs):
        encode = items if epoch >= first_tuned_epoch else frozen_items
        mined = mine_triplets(outfits, item_categories, rng, pools=pools)
        weights = np.ones(len(mined), dtype=np.float32)
        if verdicts is not None and len(verdicts):
            judged, from_bad = verdict_triplets(
                verdicts, outfits, item_categories, rng, pools=pools
            )
            mined = np.concatenate([mined, judged])
            weights = np.concatenate([weights, np.where(from_bad, config.bad_pair_weight, 1.0)])
        if len(mined) == 0:
            raise ValueError("No triplets: the outfits need items of at least two categories.")
        order = rng.permutation(len(mined))
        triplets = torch.from_numpy(mined[order])
        triplet_weights = torch.from_numpy(weights[order].astype(np.float32))
        # Unweighted (every triplet 1) when no verdict is weighted: the loss as it always was.
        weighted = bool((weights != 1.0).any())
        losses = []
        for batch, batch_weights in zip(
            triplets.split(config.batch_size), triplet_weights.split(config.batch_size), strict=True
        ):
            check_cancelled()
            counted = batch_weights if weighted else None
            choices = batch[:, 1:]  # each row's answers: the positive, then wrong ones
            if config.negatives > 1:
                extra = shared_negatives(
                    item_categories[batch[:, 1].numpy()], pools, config.negatives - 1, rng
                )
                choices = torch.cat([choices, torch.from_numpy(extra)], dim=1)
            excluded = choices[:, 1:] == choices[:, :1]
            # Each item once per batch, however many triplets it is in.
            rows, inverse = torch.unique(
                torch.cat([batch[:, 0], choices.flatten()]), return_inverse=True
            )
            embedded = head(encode(rows))
            anchor = embedded[inverse[: len(batch)]]
            answers = embedded[inverse[len(batch) :]].view(*choices.shape, -1)
            loss = answer_loss(anchor, answers, excluded, config, counted)
            if head.pair_logits is not None:
                # Every answer has the positive's category: one pair of categories per row.
                pair = head.pair_weights(categories[batch[:, 0]], categories[batch[:, 1]])
                loss = config.shared_space_loss_weight * loss + answer_loss(
                    anchor * pair, answers, excluded, config, counted
                )
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"Compatibility training diverged at epoch {epoch + 1} (loss {loss.item()}): "
                    f"try a learning rate below {config.learning_rate:g}."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
        progress("training compatibility head", epoch + 1, config.epochs, loss=epoch_losses[-1])
        if after_epoch is not None:
            set_training(False)
            after_epoch(head, epoch + 1)
            set_training(True)
        if should_stop():
            break
    set_training(False)
    logger.info("head trained: loss %.4f -> %.4f", epoch_losses[0], epoch_losses[-1])
    return head, epoch_losses


@torch.inference_mode()
def project(
    head: CompatibilityHead, item_vectors: np.ndarray | ItemEncoder, batch_size: int = 1024
) -> np.ndarray:
    """Item vectors → unit vectors of the compatibility space, (N, output_dim) float32."""
    items = item_vectors if isinstance(item_vectors, ItemEncoder) else ItemEncoder(item_vectors)
    rows = torch.arange(len(items))
    return torch.cat([head(items(chunk)) for chunk in rows.split(batch_size)]).numpy()


HEAD_FILE = "head.safetensors"  # the compatibility head, in a model version's directory


def save_head(head: CompatibilityHead, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(
        head.state_dict(), str(path), metadata={k: str(v) for k, v in asdict(head.config).items()}
    )


def load_head(path: Path) -> CompatibilityHead:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    head = CompatibilityHead(HeadConfig(**{k: int(v) for k, v in metadata.items()}))
    head.load_state_dict(load_file(str(path)))
    return head.eval()


def trained_space(
    head: CompatibilityHead,
    item_vectors: np.ndarray,
    item_categories: np.ndarray,
    category_names: Sequence[str],
    outfits: Sequence[Sequence[int]],
) -> CompatibilitySpace:
    """What a trained head serves: the items projected into the compatibility space, with the
    weights of the category pairs its training outfits taught it (others: plain cosine).
    `category_names[code]` names the category code of `item_categories`."""
    pairs = category_pairs(outfits, item_categories)
    weights = (
        PairWeights(category_names, pairs, head.pair_weight_table(pairs))
        if head.pair_logits is not None and len(pairs)
        else PairWeights.none()
    )
    return CompatibilitySpace(
        project(head, item_vectors), [category_names[code] for code in item_categories], weights
    )
