"""The compatibility space at serving time, type-aware: unit item vectors plus, for each pair of
categories, a non-negative weight per dimension (as in type-aware embeddings, Vasileva et al.
2018). How well item x of category a goes with item y of category b is Σ_d w_ab[d]·x[d]·y[d]:
a top and trousers may agree on colour dimensions that a top and a bag do not care about. The
weights sit on the query side only, so one inner-product index per category serves every pair.
A pair of categories the training never saw has no weights: plain cosine. The score itself is
computed in one place, scorers.TypeAwareScorer. numpy only."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class PairWeights:
    """Per-dimension weights of each (unordered) pair of categories, each with mean 1."""

    def __init__(self, categories: Sequence[str], pairs: np.ndarray, weights: np.ndarray) -> None:
        self.categories = list(categories)
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.weights = np.asarray(weights, dtype=np.float32)
        if len(self.weights) != len(self.pairs):
            raise ValueError(f"{len(self.pairs)} category pairs but {len(self.weights)} weights")
        self._by_names = {
            frozenset((self.categories[a], self.categories[b])): self.weights[row]
            for row, (a, b) in enumerate(self.pairs.tolist())
        }

    @classmethod
    def none(cls) -> "PairWeights":
        """No type-aware weights: every pair is scored by plain cosine."""
        return cls([], np.zeros((0, 2)), np.zeros((0, 0)))

    def __len__(self) -> int:
        return len(self.pairs)

    def between(self, category: str, other: str) -> np.ndarray | None:
        return self._by_names.get(frozenset((category, other)))

    def borrowing(self, fallbacks: Mapping[str, str]) -> "PairWeights":
        """These weights with each new category's pairs weighted as its known one's."""
        names, pairs, rows = list(self.categories), self.pairs.tolist(), list(self.weights)
        for new, known in fallbacks.items():
            if known in names:
                names.append(new)
                code, new_code = names.index(known), len(names) - 1
                for (a, b), row in zip(list(pairs), list(rows), strict=True):
                    if code in (a, b):
                        pairs.append([new_code, b if a == code else a])
                        rows.append(row)
        if names == self.categories:
            return self
        dimensions = self.weights.shape[1] if len(self.weights) else 0
        stacked = np.stack(rows) if rows else np.zeros((0, dimensions), np.float32)
        return PairWeights(names, np.array(pairs), stacked)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            categories=np.asarray(self.categories, dtype=str),
            pairs=self.pairs,
            weights=self.weights,
        )

    @classmethod
    def load(cls, path: Path) -> "PairWeights":
        with np.load(path) as stored:
            return cls(stored["categories"].tolist(), stored["pairs"], stored["weights"])


@dataclass
class CompatibilitySpace:
    """What a training gives the index: the items in the space and the pair weights learned."""

    vectors: np.ndarray  # (N, D) unit vectors
    categories: list[str]  # category of each row
    pair_weights: PairWeights
