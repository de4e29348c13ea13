"""What a garment in a photo is: a linear probe (multinomial logistic regression) on the frozen
backbone's image vectors, trained with each model version on its own catalog. Zero-shot
prompts need a backbone whose captions named categories well; a probe needs only the catalog's
labelled images, which every store has."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROBE_FILE = "category_probe.npz"


@dataclass(frozen=True)
class CategoryProbe:
    categories: list[str]
    weights: np.ndarray  # (C, E)
    bias: np.ndarray  # (C,)

    def predict(self, image_vectors: np.ndarray) -> list[str]:
        """The most likely category of each (unit) image vector, (N, E) → N names."""
        logits = np.atleast_2d(image_vectors) @ self.weights.T + self.bias
        return [self.categories[i] for i in logits.argmax(axis=1)]

    def save(self, path: Path) -> None:
        np.savez(
            path,
            categories=np.asarray(self.categories, dtype=str),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> "CategoryProbe":
        with np.load(path) as stored:
            return cls(stored["categories"].tolist(), stored["weights"], stored["bias"])


def fit_category_probe(
    image_vectors: np.ndarray,
    item_categories: Sequence[str],
    steps: int = 300,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> CategoryProbe:
    """Full-batch logistic regression: seconds for a catalog of 100k images on a CPU."""
    categories, codes = np.unique(np.asarray(item_categories), return_inverse=True)
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.from_numpy(np.ascontiguousarray(image_vectors, dtype=np.float32))
    targets = torch.from_numpy(codes.astype(np.int64))
    # Unit vectors have small logits: a temperature-sized scale lets softmax become confident.
    weights = torch.randn(len(categories), inputs.shape[1], generator=generator) * 0.01
    weights.requires_grad_(True)
    bias = torch.zeros(len(categories), requires_grad=True)
    optimiser = torch.optim.Adam([weights, bias], lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(inputs @ weights.T * 10 + bias, targets)
        loss.backward()
        optimiser.step()
    return CategoryProbe(
        categories.tolist(),
        (weights.detach() * 10).numpy(),
        bias.detach().numpy(),
    )


def held_out_split(
    count: int, fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows (held out, fitted on): a random `fraction` of `count` held out; None when fewer
    than two would be left to fit on."""
    held = max(1, int(round(count * fraction)))
    if count - held < 2:
        return None
    order = np.random.default_rng(seed).permutation(count)
    return order[:held], order[held:]


def held_out_accuracy(
    image_vectors: np.ndarray,
    item_categories: Sequence[str],
    fraction: float = 0.15,
    seed: int = 0,
) -> float | None:
    """Top-1 accuracy of a probe fitted on the other rows, on a random `fraction` of them."""
    if (split := held_out_split(len(image_vectors), fraction, seed)) is None:
        return None
    test, train = split
    labels = np.asarray(item_categories)
    probe = fit_category_probe(image_vectors[train], labels[train].tolist(), seed=seed)
    return float(np.mean(np.asarray(probe.predict(image_vectors[test])) == labels[test]))
