"""Training the outfit-level model (outfit_model.py) in torch, on a trained space's item vectors.

Every training outfit of three or more items gives one example per item (the scorer reads
outfits of two or more anchors; one anchor is a pair): the other items are the anchors, the item's
category is the target, and the item must outscore `negatives` items of its category from
outside the outfit (a softmax over them, InfoNCE), drawn at random; `hard_fraction` of them
can instead be the type-aware score's own near misses for the outfit (semi-hard negatives:
items it ranks high that the stylists did not pick), re-mined every epoch."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .outfit_model import OutfitModel, OutfitModelShape
from .progress import Progress, no_progress
from .space import PairWeights


def warm_up_share(steps: int) -> float:
    """OneCycleLR's pct_start for `steps` in all: a tenth warms up, except where that is one
    step exactly (10 steps: 10 epochs of one batch, a small shop), which OneCycleLR divides by
    zero (its warm-up phase ends at pct_start · steps − 1): then two steps."""
    return 0.2 if steps == 10 else 0.1


@dataclass(frozen=True)
class OutfitTrainingConfig:
    epochs: int = 10  # more fit the training outfits and lose new arrivals
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    dropout: float = 0.1
    negatives: int = 32
    # Of the negatives, mined from the type-aware near misses. 0: on the Mango split mined
    # negatives lowered FITB and AUC against random ones (docs/model.md, the ablation).
    hard_fraction: float = 0.0
    temperature: float = 0.1
    max_anchors: int = 10  # an example's anchors beyond this are a random subset
    seed: int = 0
    layers: int = 2
    heads: int = 4
    hidden: int = 256


class OutfitNetwork(nn.Module):
    """outfit_model.OutfitModel's forward pass in torch, with padding masks and dropout."""

    def __init__(self, shape: OutfitModelShape, category_count: int, dropout: float) -> None:
        super().__init__()
        d = shape.dim
        self.shape = shape
        self.item_in = nn.Linear(d, d, bias=False)
        self.category = nn.Embedding(category_count + 1, d)
        nn.init.normal_(self.category.weight, std=0.02)
        with torch.no_grad():  # row 0, "unknown", is never trained: it stays nothing
            self.category.weight[0].zero_()
        self.target = nn.Parameter(torch.zeros(d))
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {
                    "norm1": nn.LayerNorm(d),
                    "qkv": nn.Linear(d, 3 * d),
                    "proj": nn.Linear(d, d),
                    "norm2": nn.LayerNorm(d),
                    "ff1": nn.Linear(d, shape.hidden),
                    "ff2": nn.Linear(shape.hidden, d),
                }
            )
            for _ in range(shape.layers)
        )
        self.out_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, d, bias=False)
        nn.init.zeros_(self.out.weight)  # untrained: exactly the type-aware query
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        anchors: torch.Tensor,
        anchor_codes: torch.Tensor,
        target_codes: torch.Tensor,
        padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, n, d), (B, n), (B,) and (B, n) True where an anchor is padding → (B, d)."""
        batch, count, dim = anchors.shape
        tokens = torch.cat(
            [
                self.item_in(anchors) + self.category(anchor_codes),
                (self.target + self.category(target_codes)).unsqueeze(1),
            ],
            dim=1,
        )
        mask = None
        if padding is not None:  # the target token is never padding
            keys = torch.cat([padding, padding.new_zeros(batch, 1)], dim=1)
            mask = torch.zeros(keys.shape, dtype=tokens.dtype).masked_fill(keys, -math.inf)
            mask = mask[:, None, None, :]
        heads = self.shape.heads
        head_dim = dim // heads
        for layer in self.layers:
            x = layer["norm1"](tokens)
            qkv = layer["qkv"](x).reshape(batch, count + 1, 3, heads, head_dim)
            query, key, value = qkv.permute(2, 0, 3, 1, 4)
            logits = query @ key.transpose(-1, -2) / math.sqrt(head_dim)
            if mask is not None:
                logits = logits + mask
            mixed = (logits.softmax(dim=-1) @ value).transpose(1, 2).reshape(batch, count + 1, dim)
            tokens = tokens + self.dropout(layer["proj"](mixed))
            hidden = nn.functional.gelu(layer["ff1"](layer["norm2"](tokens)), approximate="tanh")
            tokens = tokens + self.dropout(layer["ff2"](hidden))
        return self.out(self.out_norm(tokens[:, count]))

    def to_model(self, categories: Sequence[str]) -> OutfitModel:
        """The weights as outfit_model.OutfitModel reads them (matrices as x @ W)."""

        def array(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().numpy().astype(np.float32).copy()

        weights = {
            "item_in": array(self.item_in.weight.T),
            "category": array(self.category.weight),
            "target": array(self.target),
            "out_norm": array(self.out_norm.weight),
            "out_norm_bias": array(self.out_norm.bias),
            "out": array(self.out.weight.T),
        }
        for number, layer in enumerate(self.layers):
            p = f"layer{number}."
            for name in ("norm1", "norm2"):
                weights[p + name] = array(layer[name].weight)
                weights[p + name + "_bias"] = array(layer[name].bias)
            for name in ("qkv", "proj", "ff1", "ff2"):
                weights[p + name] = array(layer[name].weight.T)
                weights[p + name + "_bias"] = array(layer[name].bias)
        return OutfitModel(self.shape, list(categories), weights)


def train_outfit_model(
    vectors: np.ndarray,
    categories: Sequence[str],
    outfits: Sequence[Sequence[int]],
    pair_weights: PairWeights,
    config: OutfitTrainingConfig = OutfitTrainingConfig(),
    progress: Progress = no_progress,
    after_epoch: Callable[[OutfitModel, int], None] | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
) -> tuple[OutfitModel, list[float]]:
    """Train the outfit-level model on `outfits` (lists of rows of `vectors`, the trained space's
    unit item vectors, whose categories are `categories`); returns it and each epoch's loss."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    names = sorted(set(categories))
    code_of = {name: code + 1 for code, name in enumerate(names)}
    codes = np.array([code_of[c] for c in categories], dtype=np.int64)
    members = {code: np.flatnonzero(codes == code) for code in range(1, len(names) + 1)}
    dim = vectors.shape[1]
    # The type-aware weight of every (anchor category, target category), by code; 0 is unknown.
    weights = np.ones((len(names) + 1, len(names) + 1, dim), dtype=np.float32)
    for a, name in enumerate(names, start=1):
        for b, other in enumerate(names, start=1):
            between = pair_weights.between(name, other)
            if between is not None:
                weights[a, b] = between
    vectors_t = torch.from_numpy(np.array(vectors, dtype=np.float32))  # a writable copy
    weights_t = torch.from_numpy(weights)
    examples = [
        (outfit, position)
        for outfit in outfits
        if len(outfit) >= 3
        for position in range(len(outfit))
    ]
    if not examples:
        raise ValueError("The outfit-level model needs outfits of three or more items.")
    shape = OutfitModelShape(dim, config.layers, config.heads, config.hidden)
    network = OutfitNetwork(shape, len(names), config.dropout)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps = max(1, config.epochs * math.ceil(len(examples) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.learning_rate, total_steps=steps, pct_start=warm_up_share(steps)
    )
    hard_count = int(round(config.negatives * config.hard_fraction))
    epoch_losses: list[float] = []
    progress("training outfit model", 0, config.epochs)
    for epoch in range(config.epochs):
        network.train()
        order = rng.permutation(len(examples))
        losses = []
        for start in range(0, len(order), config.batch_size):
            check_cancelled()
            batch = [examples[i] for i in order[start : start + config.batch_size]]
            anchors, padding, targets, outfit_sets = _anchor_batch(batch, config.max_anchors, rng)
            anchor_t = torch.from_numpy(anchors)
            target_codes = torch.from_numpy(codes[targets])
            padding_t = torch.from_numpy(padding)
            anchor_codes = torch.from_numpy(codes[anchors])
            keep = (~padding_t).float()
            base = (weights_t[anchor_codes, target_codes[:, None]] * vectors_t[anchor_t]) * keep[
                ..., None
            ]
            base_query = base.sum(dim=1) / keep.sum(dim=1, keepdim=True)
            negatives = _negatives(
                base_query.numpy(),
                targets,
                codes,
                members,
                outfit_sets,
                vectors,
                config.negatives,
                hard_count,
                rng,
            )
            candidates = torch.from_numpy(np.concatenate([targets[:, None], negatives], axis=1))
            query = base_query + network(vectors_t[anchor_t], anchor_codes, target_codes, padding_t)
            scores = (vectors_t[candidates] @ query[:, :, None]).squeeze(-1)
            loss = nn.functional.cross_entropy(
                scores / config.temperature, torch.zeros(len(batch), dtype=torch.long)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
        network.eval()
        progress("training outfit model", epoch + 1, config.epochs, loss=epoch_losses[-1])
        if after_epoch is not None:
            after_epoch(network.to_model(names), epoch + 1)
    network.eval()
    return network.to_model(names), epoch_losses


def _anchor_batch(
    batch: Sequence[tuple[Sequence[int], int]], max_anchors: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[set[int]]]:
    """Rows of each example's anchors (padded with row 0, marked in `padding`), its target's
    row, and each outfit as a set (negatives come from outside it)."""
    anchor_lists = []
    for outfit, position in batch:
        others = [row for i, row in enumerate(outfit) if i != position]
        if len(others) > max_anchors:
            others = [others[i] for i in rng.choice(len(others), max_anchors, replace=False)]
        anchor_lists.append(others)
    width = max(len(a) for a in anchor_lists)
    anchors = np.zeros((len(batch), width), dtype=np.int64)
    padding = np.ones((len(batch), width), dtype=bool)
    for i, others in enumerate(anchor_lists):
        anchors[i, : len(others)] = others
        padding[i, : len(others)] = False
    targets = np.array([outfit[position] for outfit, position in batch], dtype=np.int64)
    return anchors, padding, targets, [set(outfit) for outfit, _ in batch]


def _negatives(
    base_queries: np.ndarray,
    targets: np.ndarray,
    codes: np.ndarray,
    members: dict[int, np.ndarray],
    outfits: list[set[int]],
    vectors: np.ndarray,
    count: int,
    hard_count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`count` rows of each target's category outside its outfit: `hard_count` of them from the
    type-aware query's best 4·count (its near misses), the rest at random."""
    chosen = np.empty((len(targets), count), dtype=np.int64)
    for i, target in enumerate(targets.tolist()):
        pool = members[int(codes[target])]
        outside = pool[~np.isin(pool, list(outfits[i]))]
        if not len(outside):  # a category with nothing else: the target itself, never right
            chosen[i] = target
            continue
        hard: np.ndarray = np.empty(0, dtype=np.int64)
        if hard_count:
            scores = vectors[outside] @ base_queries[i]
            near = min(len(outside), 4 * count)
            best = outside[np.argpartition(-scores, near - 1)[:near]]
            hard = rng.choice(best, size=hard_count, replace=len(best) < hard_count)
        easy_count = count - len(hard)
        easy = rng.choice(outside, size=easy_count, replace=len(outside) < easy_count)
        chosen[i] = np.concatenate([hard, easy])
    return chosen
