"""Fine-tuning for compatibility: a new projection head on top of the frozen backbone's item
vectors, trained with a triplet loss on triplets mined from curated outfits."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .pretrain import TrainingDiverged
from .progress import Progress, no_progress
from .triplets import mine_triplets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    input_dim: int
    output_dim: int = 128
    hidden_dim: int = 256


@dataclass(frozen=True)
class HeadTrainingConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    margin: float = 0.2
    seed: int = 0


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

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.skip(items) + self.mlp(items), dim=-1)


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """Hinge on cosine similarities: the positive must beat the negative by `margin`."""
    positive_similarity = (anchor * positive).sum(dim=-1)
    negative_similarity = (anchor * negative).sum(dim=-1)
    return torch.relu(margin - positive_similarity + negative_similarity).mean()


def train_compatibility_head(
    item_vectors: np.ndarray,
    outfits: Sequence[Sequence[int]],
    item_categories: np.ndarray,
    config: HeadTrainingConfig = HeadTrainingConfig(),
    progress: Progress = no_progress,
    should_stop: Callable[[], bool] = lambda: False,
    after_epoch: Callable[[CompatibilityHead, int], None] | None = None,
) -> tuple[CompatibilityHead, list[float]]:
    """Train a new head; triplets are mined afresh every epoch (new negatives each time).
    `after_epoch(head, epoch)` may inspect the head between epochs (learning curves).
    Returns the head (in eval mode) and the mean loss of every epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head = CompatibilityHead(HeadConfig(input_dim=item_vectors.shape[1]))
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    vectors = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))
    epoch_losses: list[float] = []
    head.train()
    for epoch in range(config.epochs):
        triplets = torch.from_numpy(mine_triplets(outfits, item_categories, rng))
        if len(triplets) == 0:
            raise ValueError("No triplets: the outfits need items of at least two categories.")
        triplets = triplets[torch.from_numpy(rng.permutation(len(triplets)))]
        losses = []
        for batch in triplets.split(config.batch_size):
            anchor, positive, negative = (head(vectors[batch[:, column]]) for column in range(3))
            loss = triplet_loss(anchor, positive, negative, config.margin)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"Compatibility training diverged at epoch {epoch + 1} (loss {loss.item()})."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
        progress("training compatibility head", epoch + 1, config.epochs, loss=epoch_losses[-1])
        if after_epoch is not None:
            head.eval()
            after_epoch(head, epoch + 1)
            head.train()
        if should_stop():
            break
    head.eval()
    logger.info("head trained: loss %.4f -> %.4f", epoch_losses[0], epoch_losses[-1])
    return head, epoch_losses


@torch.inference_mode()
def project(head: CompatibilityHead, item_vectors: np.ndarray, batch_size: int = 8192):
    """Item vectors → unit vectors of the compatibility space, (N, output_dim) float32."""
    vectors = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))
    return torch.cat([head(chunk) for chunk in vectors.split(batch_size)]).numpy()


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
