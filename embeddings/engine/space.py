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


class QueryCentres:
    """The hub penalty: `weight` times each category's centre, the mean query (pair weights
    applied, averaged over the anchors) of the outfits that hold an item of it, taken from
    every query for it. Some items score high for any outfit (hubs) and crowd a new
    arrival out of the family's top ten; less weight · (centre · item) for each candidate is
    CSLS's cure, and as a score is linear in the candidate's vector it is the query that
    moves: (q − weight · centre) · item. The index serves it unchanged. Built from outfits
    by scorers.query_centres(), with the scorer's own queries."""

    def __init__(self, centres: Mapping[str, np.ndarray], weight: float) -> None:
        self.centres = {name: np.asarray(c, dtype=np.float32) for name, c in centres.items()}
        self.weight = float(weight)
        self._offsets = {name: self.weight * c for name, c in self.centres.items()}

    @classmethod
    def none(cls) -> "QueryCentres":
        return cls({}, 0.0)

    def __len__(self) -> int:
        return len(self.centres)

    def offset(self, category: str) -> np.ndarray | None:
        """What every query for `category` loses (None: nothing)."""
        return self._offsets.get(category) if self.weight else None

    def penalties(self, vectors: np.ndarray, category: str) -> np.ndarray:
        """What any query takes from the score of these items of `category`."""
        offset = self.offset(category)
        if offset is None:
            return np.zeros(len(vectors), dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32) @ offset

    def borrowing(self, fallbacks: Mapping[str, str]) -> "QueryCentres":
        """These centres with each new category's as its known one's."""
        added = {
            new: self.centres[known] for new, known in fallbacks.items() if known in self.centres
        }
        return QueryCentres(self.centres | added, self.weight) if added else self

    def save(self, path: Path) -> None:
        names = sorted(self.centres)
        np.savez(
            path,
            categories=np.asarray(names, dtype=str),
            centres=np.stack([self.centres[n] for n in names]) if names else np.zeros((0, 0)),
            weight=np.float64(self.weight),  # float64: 0.3 loads as 0.3
        )

    @classmethod
    def load(cls, path: Path) -> "QueryCentres":
        """The saved centres; none for a version saved before they were."""
        if not path.exists():
            return cls.none()
        with np.load(path) as stored:
            names = stored["categories"].tolist()
            return cls(dict(zip(names, stored["centres"], strict=True)), float(stored["weight"]))


@dataclass
class CompatibilitySpace:
    """What a training gives the index: the items in the space and the pair weights learned."""

    vectors: np.ndarray  # (N, D) unit vectors
    categories: list[str]  # category of each row
    pair_weights: PairWeights
