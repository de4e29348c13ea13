"""A model version's index refreshed with catalog changes, without retraining: products added
or changed get their item vectors (embedded by the version's own pipeline, by the caller) put
in, products removed or changed away are taken out, and the computed neighbours are updated in
both directions, so the result answers exactly as the same version built whole on the changed
catalog would. The cost grows with the changes, not with the catalog: only the neighbour lists
a change can alter are recomputed; the others merge the newcomers in. numpy and FAISS only."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .index import (
    CATEGORY_CODES_FILE,
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    SKUS_FILE,
    VECTORS_FILE,
    BestSoFar,
    CompatibilityIndex,
    GrownIndex,
    RowsOfSkus,
    above_floors,
    build_category_index,
    index_kind,
    rows_by_category,
)
from .layered import EditedRows, LayeredRows, RowEdits, Rows


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
    is_kept = np.ones(len(index.skus), dtype=bool)
    is_kept[list(removed)] = False
    kept = np.flatnonzero(is_kept)
    new_row = np.full(len(index.skus), -1, dtype=np.int64)  # old row → row after, -1: removed
    new_row[kept] = np.arange(len(kept))
    added = [sku for sku in upserts if sku not in index.row_of_sku]

    if removed:
        skus = [index.skus[row] for row in kept.tolist()] + added
        categories = [index.categories[row] for row in kept.tolist()]
    else:  # the usual refresh, new arrivals only: no row moves
        skus, categories = [*index.skus, *added], list(index.categories)
    categories += [upserts[sku].category for sku in added]
    touched: list[int] = []  # rows after whose vector or category is new
    given: list[np.ndarray] = []  # their vectors
    # Categories whose items were removed or replaced: their indexes are built again. Those
    # that only gain items are given them.
    changed = {index.categories[row] for row in removed}
    row_of_added = {sku: len(kept) + position for position, sku in enumerate(added)}
    for sku, change in upserts.items():
        old = index.row_of_sku.get(sku)
        row = int(new_row[old]) if old is not None else row_of_added[sku]
        if old is not None:
            changed.update({index.categories[old], change.category})
        categories[row] = change.category
        touched.append(row)
        given.append(np.asarray(change.vector, dtype=np.float32))
    vectors = _vectors(index, kept if removed else None, len(skus), touched, given)

    complements = borrowed_categories(index, fallbacks or {})
    recategorised = any(
        categories[row] != index.categories[row] for row in touched if row < len(index.skus)
    )
    rows_of_category = _rows_of_category(index, categories, bool(removed) or recategorised)
    indexes = _indexes(index, rows_of_category, vectors, new_row, changed)
    after = CompatibilityIndex(
        skus,
        categories,
        vectors,
        indexes,
        complements,
        index.scorer.renumbered(new_row).borrowing(fallbacks or {}),
        category_fallbacks=index.category_fallbacks | dict(fallbacks or {}),
        category_names=index.category_names,
        index_files={  # the indexes left as they were: still their files
            category: file
            for category, file in index.index_files.items()
            if indexes.get(category) is index.indexes.get(category)
        },
    )
    after.__dict__["rows_of_category"] = rows_of_category  # the cached properties, known
    if not removed:  # saved as the rows that differ from the files loaded (engine/layered.py)
        after.__dict__["row_of_sku"] = RowsOfSkus(index.row_of_sku, row_of_added)
        differ: dict[str, np.ndarray | list[int]] = {
            VECTORS_FILE: touched,
            CATEGORY_CODES_FILE: touched,
            SKUS_FILE: np.arange(len(index.skus), len(skus)),
        }
        for name, rows in differ.items():
            if name in index.layers:
                after.layers[name] = index.layers[name].with_rows(rows)
    if index.neighbours is not None:
        after.neighbours, after.neighbour_scores = _neighbours(
            index, after, new_row, sorted(set(touched))
        )
    return after


def _vectors(
    index: CompatibilityIndex,
    kept: np.ndarray | None,
    count: int,
    touched: list[int],
    given: list[np.ndarray],
) -> "np.ndarray | LayeredRows":
    """The item vectors after: the `touched` rows `given`, the others the index's, its `kept`
    rows (None: all of them, unmoved: read through, not copied)."""
    order = np.argsort(touched, kind="stable")
    rows = np.asarray(touched, dtype=np.int64)[order]
    overlay = np.asarray(given, dtype=np.float32).reshape(len(rows), index.vectors.shape[1])
    if kept is None and index.vectors.dtype == np.float32:
        return LayeredRows(index.vectors, rows, overlay[order])
    vectors = np.empty((count, index.vectors.shape[1]), dtype=np.float32)
    vectors[: len(index.vectors) if kept is None else len(kept)] = (
        index.vectors if kept is None else index.vectors[kept]
    )
    vectors[rows] = overlay[order]
    return vectors


def borrowed_categories(
    index: CompatibilityIndex, fallbacks: Mapping[str, str]
) -> dict[str, list[str]]:
    """The complements with each new category standing in for its known one: it complements
    what the known one complements, and is offered wherever the known one is (just after it).
    The scorer borrows the known one's scoring (Scorer.borrowing)."""
    complements = {category: list(others) for category, others in index.complements.items()}
    for new, known in fallbacks.items():
        complements[new] = [c for c in index.complements_of(known) if c != new]
        for category, others in complements.items():
            if category != new and known in others and new not in others:
                others.insert(others.index(known) + 1, new)
    return complements


def _rows_of_category(
    before: CompatibilityIndex, categories: list[str], renumbered: bool
) -> dict[str, np.ndarray]:
    """rows_by_category(categories): from the index's own when its rows kept their numbers
    and categories (the usual refresh: new arrivals, changed pictures), the new rows
    appended; a 1M catalog's categories are not read again (about 0.9 s)."""
    if renumbered:
        return rows_by_category(categories)
    kept = len(before.skus)
    new = rows_by_category(categories[kept:])
    rows = {
        category: np.concatenate([old, new.pop(category) + kept]) if category in new else old
        for category, old in before.rows_of_category.items()
    }
    return rows | {category: extra + kept for category, extra in new.items()}


def _indexes(
    before: CompatibilityIndex,
    rows_of_category: dict[str, np.ndarray],
    vectors: Rows,
    new_row: np.ndarray,
    changed: set[str],
) -> dict[str, "faiss.Index | GrownIndex"]:
    """Each category's index: the old one where neither its items nor their row numbers
    changed (still the memory-mapped file); a copy given the newcomers where it only gained
    items (an HNSW graph is not rebuilt for them); else built from the vectors."""
    indexes: dict[str, faiss.Index | GrownIndex] = {}
    for category, rows in rows_of_category.items():
        previous = before.rows_of_category.get(category)
        old = before.indexes.get(category)
        same_rows = (
            previous is not None
            and np.array_equal(new_row[previous], previous)
            and np.array_equal(rows[: len(previous)], previous)
        )
        if old is None or previous is None or not same_rows or category in changed:
            indexes[category] = build_category_index(vectors[rows], rows)
            continue
        gained = rows[len(previous) :]  # the rows before them are the old ones, unmoved
        if not len(gained):
            indexes[category] = old
        elif index_kind(len(rows)) != index_kind(len(previous)):  # as a whole build has it
            indexes[category] = build_category_index(vectors[rows], rows)
        elif index_kind(len(rows)) == "hnsw" or isinstance(old, GrownIndex):
            indexes[category] = _grown(old, before.index_files.get(category), vectors, rows, gained)
        else:
            # A copy of its own (the loaded one maps the file read-only): given the newcomers.
            grown = faiss.deserialize_index(faiss.serialize_index(old))
            grown.add_with_ids(np.ascontiguousarray(vectors[gained]), gained.astype(np.int64))
            indexes[category] = grown
    return indexes


# A large category's graph takes the items refreshes add in a scanned index beside it, up to
# this share of its own (GrownIndex; a scan of 5% of 1M items' category: under a millisecond);
# then the whole graph is built again, as a training builds it.
GROWN_UP_TO = 0.05


def _grown(
    old: "faiss.Index | GrownIndex",
    graph_file: Path | None,
    vectors: Rows,
    rows: np.ndarray,
    gained: np.ndarray,
) -> "faiss.Index | GrownIndex":
    """A large category's index given the `gained` rows (of all its `rows`)."""
    graph, added = (old.graph, old.added) if isinstance(old, GrownIndex) else (old, None)
    graph_file = old.graph_file if isinstance(old, GrownIndex) else graph_file
    if len(gained) + (added.ntotal if added else 0) > GROWN_UP_TO * graph.ntotal:
        return build_category_index(vectors[rows], rows)
    if added is None:
        added = build_category_index(vectors[gained], gained, kind="float32")
    else:  # a copy of its own: the loaded one maps its file read-only
        added = faiss.deserialize_index(faiss.serialize_index(added))
        added.add_with_ids(np.ascontiguousarray(vectors[gained]), gained.astype(np.int64))
    return GrownIndex(graph, added, graph_file)


def _neighbours(
    before: CompatibilityIndex, after: CompatibilityIndex, new_row: np.ndarray, touched: list[int]
) -> tuple[Rows, Rows]:
    """The computed neighbours of `after` and their scores. A list is recomputed whole when a
    change may have left it short or stale: the touched rows' own, lists that held a removed or
    touched item, and those of categories whose complementary categories changed. Every other
    list can only gain newcomers, and merges them in by the served score."""
    if before.neighbours is None:
        raise ValueError("The index keeps no computed neighbours to refresh.")
    depth = before.neighbours.shape[2]
    count, slots = len(after.skus), after.neighbour_slots()
    kept = np.flatnonzero(new_row >= 0)
    # The usual refresh (no row removed, the same slots): the old lists edited where they
    # change, the others not copied. Else a new table, the old lists renumbered into it.
    edited = len(kept) == len(new_row) and before.neighbours.shape[1] == slots
    table: EditedRows
    scores: EditedRows
    is_touched = np.zeros(count, dtype=bool)
    is_touched[touched] = True
    dirty = is_touched.copy()
    if edited:
        table = RowEdits(before.neighbours, count, fill=-1)
        scores = RowEdits(before.listed_scores(), count, fill=-np.inf)
    else:
        table, scores, lost_one = _renumbered(before, after, new_row, kept, depth)
        dirty[: len(kept)] |= lost_one
    replaced = np.asarray([row for row in touched if row < len(kept)], dtype=np.int32)
    if len(replaced):  # lists holding a product whose vector changed: its place may have too
        for start in range(0, len(kept), 65536):
            lists = np.asarray(table[np.arange(start, min(start + 65536, len(kept)))])
            dirty[start : start + len(lists)] |= np.isin(lists, replaced).any(axis=(1, 2))
    for category, rows in after.rows_of_category.items():
        if after.complements_of(category) != before.complements_of(category):
            dirty[rows] = True
    for row in touched:  # a changed product's curated bonus may lift it into its partners' lists
        dirty[list(after.scorer.partners.get(row, ()))] = True

    merges: dict[str, list[_Offer]] = {}  # by the category whose clean lists are offered
    for category, rows in after.rows_of_category.items():
        if dirty[rows].all():
            continue
        for slot, other in enumerate(after.complements_of(category)):
            candidates = after.rows_of_category.get(other)
            if candidates is None:
                continue
            newcomers = candidates[is_touched[candidates]]
            if len(newcomers):
                # The same scores rank the newcomers' own lists of `category`, when they have one.
                mine = after.neighbour_slot.get((other, category))
                keep = min(depth, len(candidates))
                offer = _Offer(slot, other, newcomers, keep, mine, min(depth, len(rows)))
                merges.setdefault(category, []).append(offer)
    _recompute(after, np.flatnonzero(dirty), table, scores, merges)
    for category, offers in merges.items():
        _merge(after, category, dirty, table, scores, offers)
    if not isinstance(table, RowEdits) or not isinstance(scores, RowEdits):
        return np.asarray(table), np.asarray(scores)  # (new arrays: renumbered)
    (edited_lists, changed_lists), (edited_scores, changed_scores) = (
        table.layered(),
        scores.layered(),
    )
    changed = np.union1d(changed_lists, changed_scores)
    after.layers |= {
        name: before.layers[name].with_rows(changed)
        for name in (NEIGHBOURS_FILE, NEIGHBOUR_SCORES_FILE)
        if name in before.layers
    }
    return edited_lists, edited_scores


def _renumbered(
    before: CompatibilityIndex,
    after: CompatibilityIndex,
    new_row: np.ndarray,
    kept: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A new table of `after`'s lists and scores holding `before`'s kept lists, renumbered
    (a removed item's place left empty: -1), and which of those lists lost an item."""
    table = after.empty_neighbours(depth)
    scores = np.full(table.shape, -np.inf, dtype=np.float32)
    old_lists = np.asarray(before.neighbours)[kept]
    slots = min(table.shape[1], old_lists.shape[1])
    remapped = np.where(old_lists >= 0, new_row[np.maximum(old_lists, 0)], -1)
    table[: len(kept), :slots] = remapped[:, :slots]
    scores[: len(kept), :slots] = np.asarray(before.listed_scores())[kept][:, :slots]
    return table, scores, ((old_lists >= 0) & (remapped < 0)).any(axis=(1, 2))


def _recompute(
    index: CompatibilityIndex,
    rows: np.ndarray,
    table: EditedRows,
    scores: EditedRows,
    merges: dict[str, list["_Offer"]],
) -> None:
    """The lists of `rows` (of any categories) computed anew into `table` and `scores`: one
    exact search per category searched, for the rows of every category that complements it
    (a search's cost hardly depends on how few rows ask); but the newcomers' lists that
    `merges` (by category searched) rank while merging them into that category's lists."""
    table[rows], scores[rows] = -1, -np.inf
    ranked_in_merge = {
        (int(row), category)
        for category, offers in merges.items()
        for offer in offers
        if offer.own_slot is not None
        for row in offer.newcomers
    }
    anchors_of: dict[str, list[int]] = {}
    slots_of: dict[str, list[int]] = {}
    for row in rows.tolist():
        for slot, other in enumerate(index.complements_of(index.categories[row])):
            if other in index.rows_of_category and (row, other) not in ranked_in_merge:
                anchors_of.setdefault(other, []).append(row)
                slots_of.setdefault(other, []).append(slot)
    for other, anchors in anchors_of.items():
        found, found_scores = index.best_items_of(other, np.asarray(anchors), table.shape[2])
        anchor_slots = np.asarray(slots_of[other])
        keep = found.shape[1]
        table[anchors, anchor_slots, :keep] = found
        scores[anchors, anchor_slots, :keep] = found_scores


@dataclass(frozen=True)
class _Offer:
    """Newcomers of `other`, offered to the lists in `slot` of a category's items, which keep
    the best `keep`; and the category's items offered to the newcomers' own lists."""

    slot: int
    other: str
    newcomers: np.ndarray
    keep: int
    # The slot of the category's items in the newcomers' own lists (None: they have none),
    # ranked from the same scores, and how many they keep.
    own_slot: int | None = None
    own_keep: int = 0


# Two ways of summing the same products differ in float32's last bits: the screen lets a list
# through this much below its floor, and the exact merge decides.
SCREEN_SLACK = 1e-4


def _merge(
    index: CompatibilityIndex,
    category: str,
    dirty: np.ndarray,
    table: EditedRows,
    scores: EditedRows,
    offers: list[_Offer],
    batch: int = 4096,
) -> None:
    """Merge each offer's newcomers into the lists of `category`'s items not `dirty` (`table`
    and `scores` rows, best first), in place; and rank the category's items into the
    newcomers' own lists (own_slot) from the same scores: the pair weights are symmetric,
    (a∘w)·n = a·(n∘w), so one matrix product per batch of the category's items with every
    offer's newcomers serves both directions, each less its hub penalty (p(a) or p(n)). A
    list is merged only if a newcomer can enter it: it is not full, or its last item scores
    below the newcomer. The curated bonus only raises a listed item's score, and a newcomer
    has none, so a newcomer enters only above the list's last score. A category's items cost
    one pass over their vectors; the merging, the lists the newcomers enter."""
    weighted = np.concatenate(
        [
            index.scorer.queries(index.vectors[o.newcomers], [o.other] * len(o.newcomers), category)
            for o in offers
        ]
    )
    ends = np.cumsum([len(offer.newcomers) for offer in offers]).tolist()
    # The products are the newcomers' scores for the items (less p(item)); an item's own list
    # wants p(item) back and p(newcomer) taken instead.
    newcomer_penalties = [
        index.scorer.penalties(index.vectors[o.newcomers], o.other)[:, None] for o in offers
    ]
    own = [
        BestSoFar(len(o.newcomers), o.own_keep) if o.own_slot is not None else None for o in offers
    ]
    items = index.rows_of_category[category]
    clean_items = ~dirty[items]
    # Each list's last score, read once for the category's lists (-inf: not full), and what
    # enters them, merged once for all: the tables' rows are few calls, not one per batch.
    floors = [np.asarray(scores[items, o.slot, o.keep - 1]) - SCREEN_SLACK for o in offers]
    entering_by_offer: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in offers]
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        screened = weighted @ index.vectors[chunk].T  # a newcomer's scores: one row
        item_penalties = index.scorer.penalties(index.vectors[chunk], category)
        items_penalised = bool(item_penalties.any())
        clean = clean_items[start : start + batch]
        for offer, stop, best, all_floors, entered, newcomer_penalty in zip(
            offers, ends, own, floors, entering_by_offer, newcomer_penalties, strict=True
        ):
            offered_to = screened[stop - len(offer.newcomers) : stop]
            if best is not None:
                best.add(offered_to, chunk)
            if items_penalised or newcomer_penalty.any():
                offered_to = offered_to + item_penalties - newcomer_penalty
            floor = all_floors[start : start + batch]
            entering = np.flatnonzero(clean & (offered_to.max(axis=0) > floor))  # most: none
            if len(entering):
                # Each entering list's newcomers above its floor, best first, at most `keep`.
                above, at = above_floors(offered_to.T[entering], floor[entering], offer.keep)
                order = np.argsort(-above, axis=1, kind="stable")
                above, at = np.take_along_axis(above, order, 1), np.take_along_axis(at, order, 1)
                offered_rows = np.where(above > -np.inf, offer.newcomers[at], -1)
                entered.append((chunk[entering], offered_rows, above))
    for offer, entered in zip(offers, entering_by_offer, strict=True):
        if entered:
            anchors = np.concatenate([anchors for anchors, _, _ in entered])
            offered = _stacked([rows for _, rows, _ in entered], fill=-1)
            above = _stacked([part for _, _, part in entered], fill=-np.inf)
            _merge_entering(index, offer, anchors, offered, above, table, scores)
    for offer, best in zip(offers, own, strict=True):
        if best is not None:
            _write_own(index, category, offer, *best.ranked(), table, scores)


def _stacked(parts: list[np.ndarray], fill: float) -> np.ndarray:
    """Two-dimensional `parts` one under the other, the narrower padded with `fill`."""
    width = max(part.shape[1] for part in parts)
    return np.concatenate(
        [np.pad(part, ((0, 0), (0, width - part.shape[1])), constant_values=fill) for part in parts]
    )


def _write_own(
    index: CompatibilityIndex,
    category: str,
    offer: _Offer,
    found_scores: np.ndarray,
    found: np.ndarray,
    table: EditedRows,
    scores: EditedRows,
) -> None:
    """The newcomers' own lists of `category` (their own_slot): the best items found, the
    curated partners of a changed product merged in as best_items_of merges them."""
    keep, slot = found.shape[1], offer.own_slot
    table[offer.newcomers, slot, :keep] = found
    scores[offer.newcomers, slot, :keep] = found_scores
    for row in offer.newcomers[index.curated[offer.newcomers]].tolist():
        table[row, slot, :keep], scores[row, slot, :keep] = index.ranked_with_partners(
            row, category, table[row, slot, :keep], keep
        )


def _merge_entering(
    index: CompatibilityIndex,
    offer: _Offer,
    anchors: np.ndarray,
    offered: np.ndarray,
    offered_scores: np.ndarray,
    table: EditedRows,
    scores: EditedRows,
) -> None:
    """Merge newcomers into the lists of `anchors`: `offered`, each list's newcomers that
    may enter it (rows, best first, -1 padded), and their `offered_scores` (-inf padded);
    the best `keep` of both by the served score."""
    keep, slot = offer.keep, offer.slot
    entering = offered_scores[:, 0] >= scores[anchors, slot, keep - 1]
    curated = index.curated[anchors]
    plain = np.flatnonzero(entering & ~curated)
    if len(plain):  # merged by score, all at once
        rows = anchors[plain]
        pool = np.concatenate([table[rows, slot, :keep], offered[plain]], 1)
        pooled = np.concatenate([scores[rows, slot, :keep], offered_scores[plain]], 1)
        order = np.argsort(-pooled, axis=1, kind="stable")[:, :keep]
        table[rows, slot, :keep] = np.take_along_axis(pool, order, axis=1)
        scores[rows, slot, :keep] = np.take_along_axis(pooled, order, axis=1)
    for position in np.flatnonzero(entering & curated).tolist():  # the bonus, one by one
        anchor = int(anchors[position])
        found = [int(r) for r in table[anchor, slot, :keep] if r >= 0]
        found += [int(r) for r in offered[position] if r >= 0]
        best_found = index.best_of(anchor, offer.other, found, keep)
        table[anchor, slot, : len(best_found)] = [row for row, _ in best_found]
        scores[anchor, slot, : len(best_found)] = [score for _, score in best_found]
