"""A model version's index refreshed with catalog changes, without retraining: products added
or changed get their item vectors (embedded by the version's own pipeline, by the caller) put
in, products removed or changed away are taken out, and the computed neighbours are updated in
both directions, so the result answers exactly as the same version built whole on the changed
catalog would. The cost grows with the changes, not with the catalog: only the neighbour lists
a change can alter are recomputed; the others merge the newcomers in. numpy and FAISS only."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from .cooccurrence import CoOccurrence
from .index import CompatibilityIndex, build_category_index, rows_by_category
from .space import PairWeights


@dataclass(frozen=True)
class Upsert:
    """A product to put in the index (new) or replace in it (changed): its category and its
    item vector in the version's compatibility space (unit, float32)."""

    category: str
    vector: np.ndarray


def refreshed(
    index: CompatibilityIndex,
    upserts: Mapping[str, Upsert],
    removals: Collection[str],
    fallbacks: Mapping[str, str] | None = None,
) -> CompatibilityIndex:
    """`index` with `upserts` put in and `removals` taken out (a SKU in both is an upsert; a
    removal the index does not hold is ignored). Rows keep their order: kept rows first, as
    they were, then new SKUs in the order given. `fallbacks` maps a category the version has
    never seen to the known one it stands in for (borrowed_categories)."""
    removed = {index.row_of_sku[sku] for sku in removals if sku in index.row_of_sku}
    removed -= {index.row_of_sku[sku] for sku in upserts if sku in index.row_of_sku}
    kept = np.array([row for row in range(len(index.skus)) if row not in removed], dtype=np.int64)
    new_row = np.full(len(index.skus), -1, dtype=np.int64)  # old row → row after, -1: removed
    new_row[kept] = np.arange(len(kept))
    added = [sku for sku in upserts if sku not in index.row_of_sku]

    skus = [index.skus[row] for row in kept.tolist()] + added
    categories = [index.categories[row] for row in kept.tolist()] + [
        upserts[sku].category for sku in added
    ]
    dimensions = index.vectors.shape[1]
    vectors = np.empty((len(skus), dimensions), dtype=np.float32)
    vectors[: len(kept)] = index.vectors[kept]
    touched: list[int] = []  # rows after whose vector or category is new
    # Categories whose items or row numbers change: their indexes are built again.
    changed = {index.categories[row] for row in removed}
    row_of_added = {sku: len(kept) + position for position, sku in enumerate(added)}
    for sku, change in upserts.items():
        old = index.row_of_sku.get(sku)
        row = int(new_row[old]) if old is not None else row_of_added[sku]
        if old is not None:
            changed.add(index.categories[old])
        vectors[row] = np.asarray(change.vector, dtype=np.float32)
        categories[row] = change.category
        changed.add(change.category)
        touched.append(row)

    complements, pair_weights = borrowed_categories(index, fallbacks or {})
    after = CompatibilityIndex(
        skus,
        categories,
        vectors,
        _indexes(index, categories, vectors, new_row, changed),
        complements,
        _cooccurrence(index.cooccurrence, new_row),
        pair_weights,
        category_fallbacks=index.category_fallbacks | dict(fallbacks or {}),
    )
    if index.neighbours is not None:
        after.neighbours = _neighbours(index, after, new_row, sorted(set(touched)))
    return after


def borrowed_categories(
    index: CompatibilityIndex, fallbacks: Mapping[str, str]
) -> tuple[dict[str, list[str]], PairWeights]:
    """The complements and pair weights with each new category standing in for its known one:
    it complements what the known one complements, is offered wherever the known one is (just
    after it), and pairs are weighted as the known one's are."""
    complements = {category: list(others) for category, others in index.complements.items()}
    weights = index.pair_weights
    names, pairs, rows = list(weights.categories), weights.pairs.tolist(), list(weights.weights)
    for new, known in fallbacks.items():
        complements[new] = [c for c in index.complements_of(known) if c != new]
        for category, others in complements.items():
            if category != new and known in others and new not in others:
                others.insert(others.index(known) + 1, new)
        if known in names:
            names.append(new)
            code, new_code = names.index(known), len(names) - 1
            for (a, b), row in zip(list(pairs), list(rows), strict=True):
                if code in (a, b):
                    pairs.append([new_code, b if a == code else a])
                    rows.append(row)
    if names == weights.categories:
        return complements, weights
    dimensions = weights.weights.shape[1] if len(weights.weights) else 0
    stacked = np.stack(rows) if rows else np.zeros((0, dimensions), np.float32)
    return complements, PairWeights(names, np.array(pairs), stacked)


def _indexes(
    before: CompatibilityIndex,
    categories: list[str],
    vectors: np.ndarray,
    new_row: np.ndarray,
    changed: set[str],
) -> dict:
    """Each category's index: the old one where neither its items nor their row numbers
    changed (still the memory-mapped file), else built from the vectors."""
    indexes = {}
    for category, rows in rows_by_category(categories).items():
        previous = before.rows_of_category.get(category)
        same_rows = previous is not None and np.array_equal(new_row[previous], previous)
        if category in before.indexes and category not in changed and same_rows:
            indexes[category] = before.indexes[category]
        else:
            indexes[category] = build_category_index(vectors[rows], rows)
    return indexes


def _cooccurrence(before: CoOccurrence, new_row: np.ndarray) -> CoOccurrence:
    """The curated pairs renumbered; pairs with a removed item dropped."""
    partners: dict[int, dict[int, int]] = {}
    for row, seen in before.partners.items():
        if new_row[row] < 0:
            continue
        kept = {int(new_row[other]): count for other, count in seen.items() if new_row[other] >= 0}
        if kept:
            partners[int(new_row[row])] = kept
    return CoOccurrence(partners, before.weight)


def _neighbours(
    before: CompatibilityIndex, after: CompatibilityIndex, new_row: np.ndarray, touched: list[int]
) -> np.ndarray:
    """The computed neighbours of `after`. A list is recomputed whole when a change may have
    left it short or stale: the touched rows' own, lists that held a removed or touched item,
    and those of categories whose complementary categories changed. Every other list can only
    gain newcomers, and merges them in by the served score."""
    depth = before.neighbours.shape[2]
    table = after.empty_neighbours(depth)
    kept = np.flatnonzero(new_row >= 0)
    old_lists = np.asarray(before.neighbours)[kept]  # (kept, old slots, depth), old rows
    remapped = np.where(old_lists >= 0, new_row[np.maximum(old_lists, 0)], -1)
    slots = min(table.shape[1], remapped.shape[1])
    table[new_row[kept], :slots] = remapped[:, :slots]

    is_touched = np.zeros(len(after.skus), dtype=bool)
    is_touched[touched] = True
    # A list that lost an item (removed: now -1 where it had one) or holds a touched item.
    lost = ((old_lists >= 0) & (remapped < 0)).any(axis=(1, 2))
    holds_touched = (is_touched[np.maximum(remapped, 0)] & (remapped >= 0)).any(axis=(1, 2))
    dirty = is_touched.copy()
    dirty[new_row[kept][lost | holds_touched]] = True
    for category, rows in after.rows_of_category.items():
        if after.complements_of(category) != before.complements_of(category):
            dirty[rows] = True

    for category, rows in after.rows_of_category.items():
        recompute = rows[dirty[rows]]
        if len(recompute):
            table[recompute] = after.neighbours_of(category, recompute, depth)
        clean = rows[~dirty[rows]]
        for slot, other in enumerate(after.complements_of(category)):
            candidates = after.rows_of_category.get(other)
            if candidates is None or not len(clean):
                continue
            newcomers = candidates[is_touched[candidates]]
            if len(newcomers):
                keep = min(depth, len(candidates))
                table[clean, slot] = _merged(
                    after, category, other, clean, table[clean, slot], newcomers, keep, depth
                )
    return table


def _merged(
    index: CompatibilityIndex,
    category: str,
    other: str,
    anchors: np.ndarray,
    lists: np.ndarray,
    newcomers: np.ndarray,
    keep: int,
    depth: int,
) -> np.ndarray:
    """`lists` (the anchors' best items of `other`, best first) with `newcomers` merged in: the
    best `keep` of both by the served score, -1 padded to `depth`."""
    queries = index.space.query_for(index.vectors[anchors], category, other)
    listed = np.where(lists >= 0, lists, 0)
    listed_scores = np.einsum("ad,akd->ak", queries, index.vectors[listed])
    listed_scores[lists < 0] = -np.inf
    pool = np.concatenate([lists, np.broadcast_to(newcomers, (len(anchors), len(newcomers)))], 1)
    scores = np.concatenate([listed_scores, queries @ index.vectors[newcomers].T], axis=1)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    merged = np.full((len(anchors), depth), -1, dtype=lists.dtype)
    merged[:, :keep] = np.take_along_axis(pool, best, axis=1)
    partners = index.cooccurrence.partners
    for position, anchor in enumerate(anchors.tolist()):
        if anchor in partners:  # the curated bonus: scored exactly, one by one
            found = [int(r) for r in pool[position] if r >= 0]
            merged[position, :keep] = [r for r, _ in index.best_of(anchor, other, found, keep)]
    return merged
