"""Curated co-occurrence: how often stylists put two items in the same outfit. It is strong
evidence for items with an outfit history (warm) and silent for new arrivals (cold), where the
content model speaks alone; scores blend the two as cosine + weight · log(1 + count)."""

from collections import Counter
from collections.abc import Sequence
from itertools import permutations
from pathlib import Path

import numpy as np


class CoOccurrence:
    def __init__(self, partners: dict[int, dict[int, int]], weight: float) -> None:
        self.partners = partners  # row -> {row seen with it: outfits together}
        self.weight = weight

    @classmethod
    def from_outfits(cls, outfits: Sequence[Sequence[int]], weight: float) -> "CoOccurrence":
        counts: Counter[tuple[int, int]] = Counter()
        for outfit in outfits:
            counts.update(permutations(set(outfit), 2))
        partners: dict[int, dict[int, int]] = {}
        for (row, other), count in counts.items():
            partners.setdefault(row, {})[other] = count
        return cls(partners, weight)

    def bonus(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """weight · mean over anchors of log(1 + outfits shared with each candidate)."""
        if not self.weight or not anchors:
            return np.zeros(len(candidates), dtype=np.float32)
        total = np.zeros(len(candidates), dtype=np.float32)
        for anchor in anchors:
            seen = self.partners.get(anchor)
            if seen:
                total += np.log1p([seen.get(candidate, 0) for candidate in candidates])
        return self.weight * total / len(anchors)

    def save(self, path: Path) -> None:
        rows = [
            (row, other, count)
            for row, seen in self.partners.items()
            for other, count in seen.items()
        ]
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        np.savez(path, pairs=table, weight=np.float32(self.weight))

    @classmethod
    def load(cls, path: Path) -> "CoOccurrence":
        with np.load(path) as stored:
            partners: dict[int, dict[int, int]] = {}
            for row, other, count in stored["pairs"].tolist():
                partners.setdefault(row, {})[other] = count
            return cls(partners, float(stored["weight"]))
