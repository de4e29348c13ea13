"""Where the catalog falls short, as the index sees it: for every item and each complementary
category, the best match a shopper could be shown (one the caller says may be shown: active,
in stock, not blocked) and the best match of all. Read from the computed neighbours and their
served scores (a saved version keeps both): vectorised, no search; a version without computed
neighbours is searched exactly (best_items_of). Only an item's listed best (24 per category)
are looked at: when none of them may be shown, its row shows weaker ones, a gap either way."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .index import NEIGHBOUR_DEPTH, CompatibilityIndex


@dataclass(frozen=True)
class BestShown:
    """For the `anchors` (rows of `category`): their best match of `other` that may be shown
    (-1 and -inf where none of the listed may) and the best listed match's score, shown or not
    (what the model would offer were everything in stock)."""

    category: str
    other: str
    anchors: np.ndarray
    best_row: np.ndarray
    best_score: np.ndarray
    top_score: np.ndarray


def listed(
    index: CompatibilityIndex, slot: int, other: str, anchors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The anchors' best rows of `other` and their served scores, best first (-1 / -inf
    padded): the computed lists when the version has them."""
    if index.neighbours is not None:
        rows = np.asarray(index.neighbours[anchors, slot])
        scores = np.asarray(index.listed_scores()[anchors, slot])
        return rows, np.where(rows >= 0, scores, -np.inf)
    return index.best_items_of(other, anchors, NEIGHBOUR_DEPTH)


def best_shown(index: CompatibilityIndex, shown: np.ndarray) -> Iterator[BestShown]:
    """BestShown for every category and each of its complementary categories; `shown[row]`:
    whether the item of that row may be shown."""
    for category, anchors in index.rows_of_category.items():
        for slot, other in enumerate(index.complements_of(category)):
            if other == category or other not in index.rows_of_category:
                continue
            rows, scores = listed(index, slot, other, anchors)
            if rows.shape[1] == 0:
                continue
            may_show = np.where(rows >= 0, shown[np.maximum(rows, 0)], False)
            first = may_show.argmax(axis=1)
            has = may_show.any(axis=1)
            picked = np.arange(len(anchors))
            yield BestShown(
                category,
                other,
                anchors,
                np.where(has, rows[picked, first], -1),
                np.where(has, scores[picked, first], -np.inf).astype(np.float32),
                np.where(rows[:, 0] >= 0, scores[:, 0], -np.inf).astype(np.float32),
            )
