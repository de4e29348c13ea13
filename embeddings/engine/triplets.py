"""Mining compatible-pair triplets from curated outfits: (anchor, positive, negative) where the
positive shares an outfit with the anchor and the negative is another item of the positive's
category, so the model must learn compatibility rather than category."""

from collections.abc import Sequence

import numpy as np


def items_by_category(item_categories: np.ndarray) -> dict[int, np.ndarray]:
    return {
        int(code): np.flatnonzero(item_categories == code) for code in np.unique(item_categories)
    }


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
) -> np.ndarray:
    """Every ordered pair of items of different categories within each outfit, each with a fresh
    random negative from the positive's category that is not in the outfit. Returns an (T, 3)
    int64 array of item indices; pairs whose category has no possible negative are skipped."""
    pools = items_by_category(item_categories)
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
