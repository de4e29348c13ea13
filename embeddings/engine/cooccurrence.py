"""Curated co-occurrence: what the stylists' outfits say of items they hold. It is strong
evidence for items with an outfit history (warm); of a new arrival (cold) it says only that no
outfit holds it, and the content model speaks. A score adds six signals, each at its weight
(learned by each training, blend.py):

- direct: the mean over the anchors of log(1 + outfits holding anchor and candidate);
- second order, where two or more anchors are read together: the candidate worn with what was
  worn with the anchors (collaborative filtering's item-to-item walk), each middle item's
  vote shared out by how often it is worn at all, so a basic worn with everything says little;
- the outfit-overlap vote, likewise: log(1 + Σ over outfits holding the candidate and two or
  more anchors of the anchors they hold), near-copies of the look asked about;
- exposure, what the outfits say by what they do not hold: how much the candidate is worn
  (log(1 + its partners summed over its outfits)), whether it is in no outfit at all (no
  evidence either way), and whether it is worn but never with an anchor the outfits hold
  (evidence against: stylists had it and paired it elsewhere).

One anchor (a product page's row, the lists refresh.py keeps up to date) reads the direct
signal alone: the outfit signals are read where an outfit is read whole (complete the look,
an outfit's completion, FITB, compatibility)."""

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from itertools import permutations
from pathlib import Path

import numpy as np

SIGNALS = ("direct", "second_order", "overlap", "worn", "unworn", "unpaired")
EXPOSURE = SIGNALS[3:]  # weighed by CoOccurrence.exposure


class CoOccurrence:
    def __init__(
        self,
        partners: dict[int, dict[int, int]],
        weight: float,
        outfits: Iterable[Sequence[int]] = (),
        second_order: float = 0.0,
        overlap: float = 0.0,
        exposure: Sequence[float] = (0.0,) * len(EXPOSURE),
    ) -> None:
        self.partners = partners  # row -> {row seen with it: outfits together}
        self.weight = weight  # of the direct signal
        self.outfits = [tuple(outfit) for outfit in outfits]  # rows, for the overlap vote
        self.second_order = second_order
        self.overlap = overlap
        self.exposure = tuple(float(w) for w in exposure)  # EXPOSURE's weights
        if len(self.exposure) != len(EXPOSURE):
            raise ValueError(f"{len(EXPOSURE)} exposure weights ({EXPOSURE}), not {exposure}")

    @classmethod
    def from_outfits(
        cls,
        outfits: Sequence[Sequence[int]],
        weight: float,
        second_order: float = 0.0,
        overlap: float = 0.0,
        exposure: Sequence[float] = (0.0,) * len(EXPOSURE),
    ) -> "CoOccurrence":
        kept = [tuple(sorted(set(outfit))) for outfit in outfits]
        kept = [outfit for outfit in kept if len(outfit) >= 2]
        counts: Counter[tuple[int, int]] = Counter()
        for outfit in kept:
            counts.update(permutations(outfit, 2))
        partners: dict[int, dict[int, int]] = {}
        for (row, other), count in counts.items():
            partners.setdefault(row, {})[other] = count
        return cls(partners, weight, kept, second_order, overlap, exposure)

    @property
    def weights(self) -> np.ndarray:
        """The weight of each of SIGNALS (float64: tolist() gives them back as set)."""
        return np.array([self.weight, self.second_order, self.overlap, *self.exposure])

    def weighted(self, *weights: float) -> "CoOccurrence":
        """The same outfits' evidence at other weights, in SIGNALS' order (those not given 0)."""
        if len(weights) > len(SIGNALS):
            raise ValueError(f"{len(SIGNALS)} weights at most ({SIGNALS}), not {weights}")
        direct, second_order, overlap, *exposure = [*weights, *[0.0] * len(SIGNALS)][: len(SIGNALS)]
        return CoOccurrence(self.partners, direct, self.outfits, second_order, overlap, exposure)

    def bonus(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """What the outfits add to each candidate's score with `anchors`: SIGNALS by weight."""
        if len(anchors) >= 2 and self.weights[1:].any():
            return (self.weights @ self.signals(anchors, candidates)).astype(np.float32)
        if not self.weight:
            return np.zeros(len(candidates), dtype=np.float32)
        return self.weight * self.direct(anchors, candidates)

    def signals(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """Each of SIGNALS for each candidate, (len(SIGNALS), len(candidates)); with fewer
        than two anchors all but the direct signal are 0."""
        found = np.zeros((len(SIGNALS), len(candidates)), dtype=np.float32)
        if not len(anchors) or not len(candidates):
            return found
        found[0] = self.direct(anchors, candidates)
        if len(anchors) >= 2:
            position: dict[int, list[int]] = {}
            for at, row in enumerate(candidates):
                position.setdefault(int(row), []).append(at)
            found[1] = self._second_order(anchors, position, len(candidates))
            found[2] = self._overlap(anchors, position, len(candidates))
            worn = np.array([self._worn.get(int(row), 0) for row in candidates])
            found[3] = np.log1p(worn)
            found[4] = worn == 0
            # "never with these" says something only of anchors the outfits hold
            if any(anchor in self.partners for anchor in anchors):
                found[5] = (worn > 0) & (found[0] == 0)
        return found

    def direct(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """The mean over anchors of log(1 + outfits shared with each candidate)."""
        total = np.zeros(len(candidates), dtype=np.float32)
        if not len(anchors):
            return total
        for anchor in anchors:
            seen = self.partners.get(anchor)
            if seen:
                total += np.log1p([seen.get(candidate, 0) for candidate in candidates])
        return total / len(anchors)

    def _second_order(
        self, anchors: Sequence[int], position: dict[int, list[int]], size: int
    ) -> np.ndarray:
        """The mean over anchors of Σ over the items m worn with it of
        log(1 + together) · log(1 + m worn with the candidate) / log(1 + m worn at all)."""
        total = np.zeros(size, dtype=np.float64)
        for anchor in anchors:
            for middle, together in self.partners.get(anchor, {}).items():
                onward = self.partners.get(middle, {})
                vote = math.log1p(together) / math.log1p(self._worn[middle])
                for row, count in onward.items():
                    for at in position.get(row, ()):
                        total[at] += vote * math.log1p(count)
        return total / len(anchors)

    def _overlap(
        self, anchors: Sequence[int], position: dict[int, list[int]], size: int
    ) -> np.ndarray:
        held: Counter[int] = Counter()  # outfit number -> anchors it holds
        for anchor in set(anchors):
            held.update(self._holding.get(anchor, ()))
        total = np.zeros(size, dtype=np.float64)
        for number, count in held.items():
            if count >= 2:
                for row in self.outfits[number]:
                    for at in position.get(row, ()):
                        total[at] += count
        return np.log1p(total)

    @cached_property
    def _worn(self) -> dict[int, int]:
        return {row: sum(seen.values()) for row, seen in self.partners.items()}

    @cached_property
    def _holding(self) -> dict[int, list[int]]:
        holding: dict[int, list[int]] = {}
        for number, outfit in enumerate(self.outfits):
            for row in outfit:
                holding.setdefault(row, []).append(number)
        return holding

    def renumbered(self, new_row: np.ndarray) -> "CoOccurrence":
        """After a refresh moved row r to new_row[r] (-1: removed)."""
        partners: dict[int, dict[int, int]] = {}
        for row, seen in self.partners.items():
            if new_row[row] < 0:
                continue
            kept = {
                int(new_row[other]): count for other, count in seen.items() if new_row[other] >= 0
            }
            if kept:
                partners[int(new_row[row])] = kept
        moved = ([int(new_row[r]) for r in outfit if new_row[r] >= 0] for outfit in self.outfits)
        return CoOccurrence(
            partners,
            self.weight,
            [outfit for outfit in moved if len(outfit) >= 2],
            self.second_order,
            self.overlap,
            self.exposure,
        )

    def save(self, path: Path) -> None:
        rows = [
            (row, other, count)
            for row, seen in self.partners.items()
            for other, count in seen.items()
        ]
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        np.savez(
            path,
            pairs=table,
            weight=np.float64(self.weight),  # float64: 0.1 loads as 0.1
            second_order=np.float64(self.second_order),
            overlap=np.float64(self.overlap),
            exposure=np.asarray(self.exposure, dtype=np.float64),
            outfit_rows=np.asarray([row for outfit in self.outfits for row in outfit], np.int64),
            outfit_sizes=np.asarray([len(outfit) for outfit in self.outfits], np.int64),
        )

    @classmethod
    def load(cls, path: Path) -> "CoOccurrence":
        """A version saved before the outfit signals (or exposure) loads with them at 0 (and
        no outfits)."""
        with np.load(path) as stored:
            partners: dict[int, dict[int, int]] = {}
            for row, other, count in stored["pairs"].tolist():
                partners.setdefault(row, {})[other] = count
            outfits: list[list[int]] = []
            if "outfit_rows" in stored:
                ends = np.cumsum(stored["outfit_sizes"])
                outfits = [part.tolist() for part in np.split(stored["outfit_rows"], ends[:-1])]
                outfits = [outfit for outfit in outfits if outfit]
            return cls(
                partners,
                float(stored["weight"]),
                outfits,
                float(stored["second_order"]) if "second_order" in stored else 0.0,
                float(stored["overlap"]) if "overlap" in stored else 0.0,
                stored["exposure"].tolist() if "exposure" in stored else (0.0,) * len(EXPOSURE),
            )
