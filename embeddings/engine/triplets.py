"""Mining compatible-pair triplets from curated outfits: (anchor, positive, negative) where the
positive shares an outfit with the anchor and the negative is another item of the positive's
category, so the model must learn compatibility rather than category."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def items_by_category(item_categories: np.ndarray) -> dict[int, np.ndarray]:
    return {
        int(code): np.flatnonzero(item_categories == code) for code in np.unique(item_categories)
    }


def worn_by_category(
    outfits: Sequence[Sequence[int]], item_categories: np.ndarray
) -> dict[int, np.ndarray]:
    """Each category's items as often as the outfits wear them (an item in three outfits three
    times): negatives drawn from here are drawn as positives are, so how often an item is
    worn, or whether it is worn at all, tells a positive from a negative no more."""
    worn: dict[int, list[int]] = {}
    for outfit in outfits:
        for item in outfit:
            worn.setdefault(int(item_categories[item]), []).append(int(item))
    return {code: np.asarray(items, dtype=np.int64) for code, items in worn.items()}


def negative_pools(
    outfits: Sequence[Sequence[int]], item_categories: np.ndarray, as_worn: bool
) -> dict[int, np.ndarray]:
    """Where each category's negatives are drawn from: as the outfits wear its items
    (`as_worn`), else every item of it alike. A category no outfit wears, which a stylist's
    verdict may still name, keeps every item of it."""
    pools = items_by_category(item_categories)
    if as_worn:
        pools.update(worn_by_category(outfits, item_categories))
    return pools


def _negative_outside(
    pool: np.ndarray, members: set[int], rng: np.random.Generator, attempts: int
) -> int | None:
    """A random item of `pool` not in `members`; a few cheap draws first, since outfits are
    small and categories large, then an exact search."""
    for candidate in rng.choice(pool, size=min(attempts, len(pool))):
        if int(candidate) not in members:
            return int(candidate)
    outside = [int(item) for item in pool if int(item) not in members]
    return int(rng.choice(outside)) if outside else None


def mine_triplets(
    outfits: Sequence[Sequence[int]],
    item_categories: np.ndarray,
    rng: np.random.Generator,
    attempts: int = 8,
    pools: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Every ordered pair of items of different categories within each outfit, each with a fresh
    random negative from the positive's category that is not in the outfit, drawn from `pools`
    (by category; default: every item of it alike). Returns an (T, 3) int64 array of item
    indices; pairs whose category has no possible negative are skipped."""
    pools = items_by_category(item_categories) if pools is None else pools
    rows: list[tuple[int, int, int]] = []
    for outfit in outfits:
        members = set(outfit)
        for anchor in outfit:
            for positive in outfit:
                if anchor == positive or item_categories[anchor] == item_categories[positive]:
                    continue
                negative = _negative_outside(
                    pools[int(item_categories[positive])], members, rng, attempts
                )
                if negative is not None:
                    rows.append((anchor, positive, negative))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


@dataclass(frozen=True)
class Verdicts:
    """Stylists' verdicts on pairs of items (rows): good pairs train as extra positives, bad
    pairs as hard negatives of their anchor (weighted by HeadTrainingConfig.bad_pair_weight)."""

    good: np.ndarray  # (G, 2) rows
    bad: np.ndarray  # (B, 2) rows

    @classmethod
    def of(cls, good: Sequence[tuple[int, int]], bad: Sequence[tuple[int, int]]) -> "Verdicts":
        return cls(
            np.asarray(good, dtype=np.int64).reshape(-1, 2),
            np.asarray(bad, dtype=np.int64).reshape(-1, 2),
        )

    def __len__(self) -> int:
        return len(self.good) + len(self.bad)


def verdict_triplets(
    verdicts: Verdicts,
    outfits: Sequence[Sequence[int]],
    item_categories: np.ndarray,
    rng: np.random.Generator,
    attempts: int = 8,
    pools: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Triplets from the verdicts, both ways round: a good pair (a, b) gives (a, b, a random
    item of b's category, from `pools` as in mine_triplets) and (b, a, …); a bad pair (a, b)
    gives (a, p, b) with p one of a's positives of b's category (an outfit-mate or a good
    pair) and (b, q, a) likewise; a bad pair whose anchor has no such positive is skipped.
    Returns the (T, 3) triplets and which of them come from bad pairs."""
    pools = items_by_category(item_categories) if pools is None else pools
    positives: dict[tuple[int, int], list[int]] = {}  # (item, category) -> positives

    def pair(a: int, b: int) -> None:
        positives.setdefault((a, int(item_categories[b])), []).append(b)

    mates: dict[int, set[int]] = {}
    for outfit in outfits:
        for a in outfit:
            mates.setdefault(a, set()).update(outfit)
            for b in outfit:
                if item_categories[a] != item_categories[b]:
                    pair(a, b)
    for a, b in verdicts.good.tolist():
        pair(a, b)
        pair(b, a)
    rows: list[tuple[int, int, int]] = []
    from_bad: list[bool] = []
    for a, b in verdicts.good.tolist():
        for anchor, positive in ((a, b), (b, a)):
            taken = mates.get(anchor, set()) | {anchor, positive}
            negative = _negative_outside(
                pools[int(item_categories[positive])], taken, rng, attempts
            )
            if negative is not None:
                rows.append((anchor, positive, negative))
                from_bad.append(False)
    for a, b in verdicts.bad.tolist():
        for anchor, negative in ((a, b), (b, a)):
            found = [
                p
                for p in positives.get((anchor, int(item_categories[negative])), [])
                if p != negative
            ]
            if found:
                rows.append((anchor, int(rng.choice(found)), negative))
                from_bad.append(True)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3), np.asarray(from_bad, dtype=bool)
