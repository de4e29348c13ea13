"""The compatibility space at serving time, type-aware: unit item vectors plus, for each pair of
categories, a non-negative weight per dimension (as in type-aware embeddings, Vasileva et al.
2018). How well item x of category a goes with item y of category b is Σ_d w_ab[d]·x[d]·y[d]:
a top and trousers may agree on colour dimensions that a top and a bag do not care about. The
weights sit on the query side only, so one inner-product index per category serves every pair.
A pair of categories the training never saw has no weights: plain cosine. numpy only."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cooccurrence import CoOccurrence


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
    vectors: np.ndarray  # (N, D) unit vectors
    categories: list[str]  # category of each row
    pair_weights: PairWeights

    def query(self, row: int, category: str) -> np.ndarray:
        """The vector to search `category`'s index with for items that go with `row`."""
        return self.query_for(self.vectors[row], self.categories[row], category)

    def query_for(self, vector: np.ndarray, vector_category: str, category: str) -> np.ndarray:
        """The same for any `vector` of this space (a shopper's photo), of `vector_category`."""
        weights = self.pair_weights.between(vector_category, category)
        return vector if weights is None else vector * weights

    def scores(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """Mean compatibility of each candidate with the anchors, (len(candidates),)."""
        candidate_rows = np.asarray(candidates, dtype=np.int64)
        total = np.zeros(len(candidate_rows), dtype=np.float32)
        if not len(anchors) or not len(candidate_rows):
            return total
        candidate_categories = np.asarray([self.categories[c] for c in candidate_rows])
        for category in np.unique(candidate_categories):
            in_category = candidate_categories == category
            queries = np.stack([self.query(anchor, str(category)) for anchor in anchors])
            rows = candidate_rows[in_category]
            total[in_category] = (self.vectors[rows] @ queries.T).mean(axis=1)
        return total


@dataclass
class SpaceScorer:
    """Scores items by id in a space (the evaluation's `Scorer`), plus the curated
    co-occurrence bonus when given: the score the product serves."""

    space: CompatibilitySpace
    row_of: dict[str, int]
    cooccurrence: CoOccurrence | None = None

    def __contains__(self, item: object) -> bool:
        return item in self.row_of

    def __call__(self, question: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        anchors = [self.row_of[item] for item in question]
        rows = [self.row_of[item] for item in candidates]
        scores = self.space.scores(anchors, rows)
        return scores + self.cooccurrence.bonus(anchors, rows) if self.cooccurrence else scores
