"""The serving side of a model version: item vectors of the compatibility space in one FAISS
index per category, and which categories complement which. Needs numpy and faiss, not torch,
so web processes can serve matches without loading a neural network."""

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import permutations
from pathlib import Path

import faiss
import numpy as np

from .candidates import Candidates, diverse
from .cooccurrence import CoOccurrence
from .layered import (
    LAYERED_UP_TO,
    OVERLAY_SUFFIX,
    ROWS_SUFFIX,
    Layer,
    LayeredRows,
    Rows,
    load_rows,
    save_rows,
)
from .outfit_model import OutfitModel
from .progress import Progress, no_progress
from .scorers import (
    OutfitScorer,
    Scorer,
    SkuScorer,
    TypeAwareScorer,
    load_scorer,
    query_centres,
    scorer_files,
)
from .space import PairWeights
from .threads import batch_threads

ITEMS_FILE = "items.json"
# The SKUs, one JSON list of up to SKUS_A_LINE a line, and each item's category by its number
# in items.json's category_names: a web process loading a large version beside the served one
# parses a line at a time, its requests getting the interpreter between lines (one JSON
# document of a 1M catalog's items held it for about half a second).
SKUS_FILE = "skus.jsonl"
SKUS_A_LINE = 50_000
# A refreshed version's SKUs are its base's file, linked, and those added since (one JSON
# list); its category codes are layered as the arrays are (embeddings.engine.layered).
ADDED_SKUS_FILE = "skus.added.json"
CATEGORY_CODES_FILE = "item_categories.npy"
VECTORS_FILE = "item_vectors.npy"
NEIGHBOURS_FILE = "neighbours.npy"
NEIGHBOUR_SCORES_FILE = "neighbour_scores.npy"
INDEX_DIR = "indexes"
# How many of each complementary category's best items are computed ahead for every item: a
# matches row over-fetches 2 × its length + 6 (up to 9 a row) and complete-the-look 23.
NEIGHBOUR_DEPTH = 24


def complementary_categories(
    outfits: Sequence[Sequence[int]], item_categories: Sequence[str]
) -> dict[str, list[str]]:
    """For each category, the other categories stylists combine it with, most frequent first.
    Categories that never share an outfit (a dress and a skirt) are not complementary."""
    pair_counts: Counter[tuple[str, str]] = Counter()
    for outfit in outfits:
        categories = {item_categories[item] for item in outfit}
        pair_counts.update(permutations(categories, 2))
    complements: dict[str, list[str]] = {}
    for (category, other), _count in pair_counts.most_common():
        complements.setdefault(category, []).append(other)
    return complements


# A category of up to this many items is scanned in float32: it stays in the CPU's cache. A
# larger one is scanned in float16 codes, half the memory traffic that bounds a scan once the
# catalog outgrows the cache (100k products, 128 dimensions: a request's 12 scans take 1.3 ms
# instead of 2.0); nearest_rows re-scores the candidates in float32, so served scores are exact.
FLOAT32_SCAN_UP_TO = 4096
# From this many items a category is searched through an HNSW graph, where it overtakes the
# exhaustive float16 scan (benchmarks/index.py, p99 at 100k items: 0.88 ms against 1.25; at
# 1M: 1.42 against 12.0, recall@10 0.989). The scores of what it finds stay exact.
GRAPH_FROM = 100_000
HNSW_NEIGHBOURS = 32  # links per node (M)
HNSW_BUILD_DEPTH = 64  # efConstruction
HNSW_SEARCH_DEPTH = 256  # efSearch: 128 gave recall@10 0.953 at 1M, too close to 0.95


def index_kind(count: int) -> str:
    """How a category of `count` items is searched: 'float32', 'float16' or 'hnsw'."""
    if count >= GRAPH_FROM:
        return "hnsw"
    return "float32" if count <= FLOAT32_SCAN_UP_TO else "float16"


def build_category_index(
    vectors: np.ndarray, ids: np.ndarray, kind: str | None = None
) -> faiss.Index:
    """Inner-product search (cosine on unit vectors) over one category's items, returning our
    own row ids: exhaustive in float32 or float16, or an HNSW graph for a large category;
    `kind` as index_kind() names them, by default the one for the category's size."""
    dimensions = vectors.shape[1]
    kind = kind or index_kind(len(vectors))
    if kind == "float32":
        search: faiss.Index = faiss.IndexFlatIP(dimensions)
    elif kind == "float16":
        search = faiss.IndexScalarQuantizer(
            dimensions, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    elif kind == "hnsw":
        search = faiss.IndexHNSWFlat(dimensions, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        search.hnsw.efConstruction = HNSW_BUILD_DEPTH
        search.hnsw.efSearch = HNSW_SEARCH_DEPTH
    else:
        raise ValueError(f"unknown index kind {kind!r}: float32, float16 or hnsw")
    index = faiss.IndexIDMap2(search)
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    return index


class GrownIndex:
    """A large category's graph as a version built it, and the items refreshes added to the
    category since, scanned exactly: searched as one index. Adding to an HNSW graph means
    copying it and writing its file anew (a 1M catalog's: 113 MB a category, every refresh);
    this way its file is hard-linked into each refreshed directory instead, and web processes
    map the same file (refresh.GROWN_UP_TO: when a whole graph is built again)."""

    def __init__(self, graph: faiss.Index, added: faiss.Index, graph_file: Path | None) -> None:
        self.graph, self.added = graph, added
        self.graph_file = graph_file  # where `graph` was read from: linked, not written

    @property
    def ntotal(self) -> int:
        return self.graph.ntotal + self.added.ntotal

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss's search: (scores, rows) of the `count` best of both parts, -1 padded."""
        parts = [
            part.search(queries, min(count, part.ntotal))
            for part in (self.graph, self.added)
            if part.ntotal
        ]
        scores = np.concatenate([found for found, _ in parts], axis=1)
        rows = np.concatenate([found for _, found in parts], axis=1)
        scores[rows < 0] = -np.inf
        best = np.argsort(-scores, axis=1, kind="stable")[:, :count]
        return np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)


class BestSoFar:
    """Each query's `keep` best scores so far and what they are of, as blocks of scores come:
    the first block's best kept by a partial sort; in each later one, only the scores above
    the query's `keep`-th best so far are sorted in (most queries have none). On one thread
    it costs hardly more than the matrix products that score the blocks (860 queries, 143k
    items of 128 dimensions: 1.3 s, the products alone 1.4, faiss.knn 6.3 s, which ranks in a
    heap per query); faiss.knn gains from more threads, this does not."""

    def __init__(self, queries: int, keep: int) -> None:
        self.keep = keep
        self.scores = np.empty((queries, 0), dtype=np.float32)
        self.items = np.empty((queries, 0), dtype=np.int64)
        self.floor: np.ndarray | None = None  # each query's keep-th best, once it has `keep`

    def add(self, scored: np.ndarray, items: np.ndarray) -> None:
        """Take in `scored`, (queries, len(items)): each query's scores with `items`."""
        keep = self.keep
        if self.floor is None:
            found = np.broadcast_to(np.arange(scored.shape[1]), scored.shape)
            if scored.shape[1] > keep:
                found = np.argpartition(-scored, keep - 1, axis=1)[:, :keep]
                scored = np.take_along_axis(scored, found, 1)
        else:
            rising = np.flatnonzero(scored.max(axis=1) > self.floor)
            above, at = above_floors(scored[rising], self.floor[rising], keep)
            scored = np.full((len(scored), above.shape[1]), -np.inf, dtype=np.float32)
            found = np.zeros((len(scored), above.shape[1]), dtype=np.int64)
            scored[rising], found[rising] = above, at
        best = np.concatenate([self.scores, scored], axis=1)
        where = np.concatenate([self.items, items[found]], axis=1)
        if best.shape[1] > keep:
            found = np.argpartition(-best, keep - 1, axis=1)[:, :keep]
            best, where = np.take_along_axis(best, found, 1), np.take_along_axis(where, found, 1)
        self.scores, self.items = best, where
        if best.shape[1] == keep:
            self.floor = best.min(axis=1)

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """The best scores and their items, best first: two (queries, keep) arrays."""
        order = np.argsort(-self.scores, axis=1, kind="stable")
        return np.take_along_axis(self.scores, order, 1), np.take_along_axis(self.items, order, 1)


def above_floors(scored: np.ndarray, floor: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best scores above its floor, at most `keep` of them, and their columns,
    left-aligned in the narrowest arrays that hold them (-inf padded), in no order. Picked
    out by comparison where few are above (the usual case); by a partial sort of the rows
    where some have more than `keep` (a newcomer among many near-identical items), which
    may then keep a row's best below its floor too."""
    is_above = scored > floor[:, np.newaxis]
    counts = np.count_nonzero(is_above, axis=1)
    width = int(counts.max(initial=0))
    if width > keep:
        best = np.argpartition(-scored, keep - 1, axis=1)[:, :keep]
        return np.take_along_axis(scored, best, 1), best
    rows, columns = np.nonzero(is_above)  # row by row
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    above = np.full((len(scored), width), -np.inf, dtype=np.float32)
    at = np.zeros((len(scored), width), dtype=np.int64)
    above[rows, rank], at[rows, rank] = scored[rows, columns], columns
    return above, at


def rows_by_category(categories: Sequence[str]) -> dict[str, np.ndarray]:
    """The rows of each category, ascending; the categories in order of first appearance."""
    number: dict[str, int] = {}
    # A generator, not one C call over a 1M catalog's strings: a web process loading a version
    # beside the served one leaves its requests the interpreter meanwhile.
    codes = np.fromiter((number.setdefault(c, len(number)) for c in categories), np.int32)
    return {category: np.flatnonzero(codes == code) for category, code in number.items()}


class RowsOfSkus(Mapping[str, int]):
    """sku → row of an index whose first rows are another index's: that index's mapping,
    shared (copying a 1M catalog's dict holds a web process's interpreter for tens of
    milliseconds), and the rows added after them."""

    def __init__(self, before: Mapping[str, int], added: dict[str, int]) -> None:
        self.before: Mapping[str, int] = before.before if isinstance(before, RowsOfSkus) else before
        self.added: dict[str, int] = (
            before.added | added if isinstance(before, RowsOfSkus) else added
        )

    @classmethod
    def of(cls, skus: Sequence[str], before: Mapping[str, int]) -> "RowsOfSkus":
        """The rows of `skus`, whose first len(before) are `before`'s SKUs in its rows."""
        first = len(before)
        return cls(before, {sku: row for row, sku in enumerate(skus[first:], first)})

    def __getitem__(self, sku: str) -> int:
        row = self.added.get(sku)
        return self.before[sku] if row is None else row

    def __contains__(self, sku: object) -> bool:
        return sku in self.added or sku in self.before

    def __iter__(self) -> Iterator[str]:
        yield from self.before
        yield from self.added

    def __len__(self) -> int:
        return len(self.before) + len(self.added)


@dataclass
class CompatibilityIndex:
    skus: list[str]
    categories: list[str]
    vectors: Rows  # (N, D) unit vectors; row i is skus[i]
    indexes: dict[str, "faiss.Index | GrownIndex"]
    complements: dict[str, list[str]]
    scorer: Scorer  # the served score (scorers.py): every ranking here goes through it
    # (N, slots, depth) rows, -1 padded: row r's best items of the slot-th category of
    # complements_of(its category), best first. None: every question searches the index.
    neighbours: Rows | None = None
    # A category the training never saw → the known one whose complementary categories and
    # pair weights it borrows until a training learns it (embeddings.engine.refresh).
    category_fallbacks: dict[str, str] = field(default_factory=dict)
    # The served score of each item in `neighbours` (-inf where -1): what a refresh merges
    # newcomers by, without fetching the listed items' vectors. None: not kept (computed
    # when saved, or when a refresh needs them).
    neighbour_scores: Rows | None = None
    # The file each category's index was read from (load), kept by a refresh for the indexes
    # it leaves as they were: save() links such a file (and a GrownIndex's graph) into the
    # directory it writes instead of writing it again, and a web process that hashed it
    # once does not hash it again.
    index_files: dict[str, Path] = field(default_factory=dict)
    # Where `vectors`, `neighbours` and `neighbour_scores` (by file name) were mapped from
    # (load), and the rows a refresh changed since: save() writes those rows beside the file
    # they came from, linked (embeddings.engine.layered).
    layers: dict[str, Layer] = field(default_factory=dict)
    # The numbering of the categories in the codes file loaded (items.json's category_names):
    # a refresh saved as rows beside that file keeps it, new categories numbered after.
    category_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.neighbour_slot = {
            (category, other): slot
            for category in self.indexes
            for slot, other in enumerate(self.complements_of(category))
        }

    def scores(self, anchors: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """The served score of each candidate row with the anchor rows."""
        return self.scorer.scores(self.vectors, self.categories, anchors, candidates)

    def sku_scorer(self, scorer: Scorer | None = None) -> SkuScorer:
        """The served score (or `scorer`'s, over these items) by SKU, as evaluations ask."""
        return SkuScorer(scorer or self.scorer, self.vectors, self.categories, self.row_of_sku)

    @classmethod
    def build(
        cls,
        skus: Sequence[str],
        categories: Sequence[str],
        vectors: np.ndarray,
        outfits: Sequence[Sequence[int]],
        cooccurrence_weight: float = 0.0,
        pair_weights: PairWeights | None = None,
        neighbour_depth: int = NEIGHBOUR_DEPTH,
        progress: Progress = no_progress,
        outfit_model: OutfitModel | None = None,
        hub_penalty: float = 0.0,
        second_order_weight: float = 0.0,
        overlap_weight: float = 0.0,
        exposure_weights: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> "CompatibilityIndex":
        """The index of a trained space: the type-aware scorer of `pair_weights` with the
        outfits' co-occurrence at `cooccurrence_weight` (its outfit signals at
        `second_order_weight`, `overlap_weight` and `exposure_weights`) and their centres at
        `hub_penalty` (read by `outfit_model` where an outfit is scored whole, when given),
        each item's computed lists to `neighbour_depth`."""
        categories = list(categories)
        pairs = TypeAwareScorer(
            pair_weights,
            CoOccurrence.from_outfits(
                outfits, cooccurrence_weight, second_order_weight, overlap_weight, exposure_weights
            ),
            query_centres(
                pair_weights or PairWeights.none(), vectors, categories, outfits, hub_penalty
            ),
        )
        scorer: Scorer = pairs if outfit_model is None else OutfitScorer(pairs, outfit_model)
        indexes: dict[str, faiss.Index | GrownIndex] = {
            category: build_category_index(vectors[rows], rows)
            for category, rows in rows_by_category(categories).items()
        }
        index = cls(
            list(skus),
            categories,
            vectors,
            indexes,
            complementary_categories(outfits, categories),
            scorer,
        )
        if neighbour_depth > 0:
            index.neighbours = index.computed_neighbours(neighbour_depth, progress)
        return index

    @cached_property
    def row_of_sku(self) -> Mapping[str, int]:
        return {sku: row for row, sku in enumerate(self.skus)}

    @cached_property
    def rows_of_category(self) -> dict[str, np.ndarray]:
        return rows_by_category(self.categories)

    @cached_property
    def curated(self) -> np.ndarray:
        """Whether each row has curated partners (a co-occurrence bonus), as one array."""
        curated = np.zeros(len(self.skus), dtype=bool)
        curated[list(self.scorer.partners)] = True
        return curated

    @cached_property
    def category_of_row(self) -> np.ndarray:
        return np.asarray(self.categories, dtype=object)

    def empty_neighbours(self, depth: int, items: int | None = None) -> np.ndarray:
        """A `neighbours` table of `depth` for all items (or the first `items`), no neighbour
        found yet (all -1)."""
        count = len(self.skus) if items is None else items
        return np.full((count, self.neighbour_slots(), depth), -1, dtype=np.int32)

    @property
    def listed_depth(self) -> int:
        """How deep the computed lists go (0: none; every question searches)."""
        return 0 if self.neighbours is None else int(self.neighbours.shape[2])

    def neighbour_slots(self) -> int:
        """The slots of a `neighbours` row: the most complementary categories any has."""
        return max((len(self.complements_of(c)) for c in self.indexes), default=0)

    def computed_neighbours(self, depth: int, progress: Progress = no_progress) -> np.ndarray:
        """Every item's `depth` best items of each complementary category by the served score,
        as `neighbours` holds them (2 cores: 22–24 s at 100k items, about 26 min at 1M)."""
        table = self.empty_neighbours(depth)
        done, total = 0, len(self.skus)
        for category, anchors in self.rows_of_category.items():
            table[anchors] = self.neighbours_of(category, anchors, depth)
            done += len(anchors)
            progress("indexing", done, total)
        return table

    def neighbours_of(
        self, category: str, anchors: np.ndarray, depth: int, batch: int = 4096
    ) -> np.ndarray:
        """The `neighbours` rows of `anchors`, items of `category`: (len(anchors), slots,
        depth). Exact search of whole categories in batches (matrix products, the CPU's
        fastest work), the curated partners merged in as nearest_rows merges them."""
        table = self.empty_neighbours(depth, len(anchors))
        for slot, other in enumerate(self.complements_of(category)):
            if other in self.rows_of_category:
                found, _ = self.best_items_of(other, np.asarray(anchors), depth, batch)
                table[:, slot, : found.shape[1]] = found
        return table

    def best_items_of(
        self, other: str, anchors: np.ndarray, depth: int, batch: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best min(depth, items of `other`) items of `other` for each of `anchors` (rows of
        any categories) by the served score, best first, and those scores: two (len(anchors),
        keep) arrays. Exact: one search of the whole category per batch (faiss.knn: on
        two threads, 3× faster than best items kept by numpy per block; a refresh ranks
        its few newcomers' lists with BestSoFar instead)."""
        # OpenMP's own thread count, even in a process that serves with one thread
        # (OUTFITS_SERVING_FAISS_THREADS) and trains a version too.
        serving_threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(batch_threads())
        try:
            return self._best_items_of(other, anchors, depth, batch)
        finally:
            faiss.omp_set_num_threads(serving_threads)

    def _best_items_of(
        self, other: str, anchors: np.ndarray, depth: int, batch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        candidates = self.rows_of_category[other]
        keep, pool = min(depth, len(candidates)), self.vectors[candidates]
        rows = np.empty((len(anchors), keep), dtype=np.int32)
        scores = np.empty((len(anchors), keep), dtype=np.float32)
        for start in range(0, len(anchors), batch):
            chunk = anchors[start : start + batch]
            queries = self.queries_towards(other, chunk)
            scores[start : start + len(chunk)], found = faiss.knn(
                queries, pool, keep, metric=faiss.METRIC_INNER_PRODUCT
            )
            rows[start : start + len(chunk)] = candidates[found]
        for position in np.flatnonzero(self.curated[anchors]).tolist():
            anchor = int(anchors[position])
            rows[position], scores[position] = self.ranked_with_partners(
                anchor, other, rows[position], keep
            )
        return rows, scores

    def ranked_with_partners(
        self, row: int, category: str, listed: np.ndarray, keep: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """`row`'s list of `category` with its curated partners there merged in (their bonus
        may lift them above the nearest items): the `keep` best of both by the served score,
        and those scores, -1 / -inf padded."""
        found = self.with_partners(row, category, listed[listed >= 0])
        best = self.best_of(row, category, found, keep)
        rows = np.full(keep, -1, dtype=np.int32)
        scores = np.full(keep, -np.inf, dtype=np.float32)
        rows[: len(best)] = [r for r, _ in best]
        scores[: len(best)] = [score for _, score in best]
        return rows, scores

    def queries_towards(self, other: str, anchors: np.ndarray) -> np.ndarray:
        """The query vectors of `anchors` (rows of any categories) for searching `other`."""
        return self.scorer.queries(self.vectors[anchors], self.category_of_row[anchors], other)

    def complements_of(self, category: str) -> list[str]:
        """Complementary categories; a category seen in no outfit gets every other one."""
        if category in self.complements:
            return self.complements[category]
        return sorted(c for c in self.indexes if c != category)

    def nearest(self, sku: str, category: str, count: int) -> list[tuple[str, float]]:
        """The `count` items of `category` most compatible with `sku`, best first, never `sku`."""
        return [(other, score) for other, score, _ in self.candidates(sku, category, count)]

    def nearest_rows(self, row: int, category: str, count: int) -> list[tuple[int, float]]:
        """`nearest` by row: (row, score) pairs; read from the computed neighbours when they
        reach deep enough, else searched."""
        index = self.indexes.get(category)
        if index is None or count <= 0:
            return []
        slot = self.neighbour_slot.get((self.categories[row], category))
        if self.neighbours is not None and slot is not None and count <= self.neighbours.shape[2]:
            computed = self.neighbours[row, slot, :count]
            candidates = computed[computed >= 0].tolist()
        else:
            query = self.scorer.query(self.vectors[row], self.categories[row], category)
            found, _ = self._search(index, query, count + 1)
            candidates = self.with_partners(row, category, found)
        return self.best_of(row, category, candidates, count)

    def nearest_rows_each(
        self, asked: Sequence[tuple[int, str]], count: int
    ) -> list[list[tuple[int, float]]]:
        """nearest_rows() of each (row, category) asked (its scores within float32 rounding),
        worked out together: the computed lists and their kept scores read in one gather for
        all (a batch of 100 products asks for ~850 rows; one at a time, the Python around
        scoring 14 items cost more than the scoring), or, where the scores are not kept,
        scored in one matrix product per category. The rest searched one by one."""
        found: list[list[tuple[int, float]]] = [[] for _ in asked]
        listed: list[tuple[int, int]] = []  # (position asked, slot)
        for at, (row, category) in enumerate(asked):
            slot = self.listed_slot(row, category, count)
            if slot is None:
                found[at] = self.nearest_rows(row, category, count)
            else:
                listed.append((at, slot))
        if not listed:
            return found
        positions = [at for at, _ in listed]
        anchors = np.asarray([asked[at][0] for at in positions])
        slots = np.asarray([slot for _, slot in listed])
        table, scores = self.listed_rows(anchors, slots, count)
        for at, rows, row_scores in zip(positions, table.tolist(), scores.tolist(), strict=True):
            found[at] = [(r, s) for r, s in zip(rows, row_scores, strict=True) if r >= 0]
        return found

    def listed_rows(
        self, anchors: np.ndarray, slots: np.ndarray, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first `count` of each anchor's computed list in its slot (listed_slot) and their
        served scores, best first as nearest_rows ranks them: two (len(anchors), count) arrays,
        -1 / -inf padded. The kept scores when the index has them (the served score within
        float32 rounding: another sum made them), else scored here, one matrix product per
        category."""
        if self.neighbours is None:
            raise ValueError("This index keeps no computed lists: ask nearest_rows().")
        every = np.arange(len(anchors))
        table = np.asarray(self.neighbours[anchors])[every, slots, :count]
        if self.neighbour_scores is not None:
            scores = np.asarray(self.neighbour_scores[anchors])[every, slots, :count]
        else:
            scores = np.empty(table.shape, dtype=np.float32)
            complements = [self.complements_of(self.categories[row]) for row in anchors.tolist()]
            categories = np.asarray(
                [mine[slot] for mine, slot in zip(complements, slots.tolist(), strict=True)],
                dtype=object,
            )
            for category in set(categories.tolist()):
                mine = categories == category
                scores[mine] = self._listed_scores_of(category, anchors[mine], table[mine])
        order = np.argsort(-scores, axis=1, kind="stable")  # as best_of ranks them
        return np.take_along_axis(table, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def listed_slot(self, row: int, category: str, count: int) -> int | None:
        """The slot of `category` in `row`'s computed lists when they reach `count` deep;
        None when the question is searched instead."""
        if self.neighbours is None or category not in self.indexes:
            return None
        if not 0 < count <= self.neighbours.shape[2]:
            return None
        return self.neighbour_slot.get((self.categories[row], category))

    def _listed_scores_of(self, other: str, anchors: np.ndarray, listed: np.ndarray) -> np.ndarray:
        """The served score of each item of `listed` ((len(anchors), k) rows of `other`, -1
        padded) with its anchor, -inf where none: the query's inner products for all at once;
        anchors with curated partners scored by the scorer (their bonus)."""
        found = np.einsum(
            "ad,akd->ak", self.queries_towards(other, anchors), self.vectors[np.maximum(listed, 0)]
        )
        scores = np.where(listed >= 0, found, -np.inf).astype(np.float32)
        for at in np.flatnonzero(self.curated[anchors]).tolist():
            rows = [int(r) for r in listed[at] if r >= 0]
            scores[at, : len(rows)] = self.served_scores(int(anchors[at]), other, rows)
        return scores

    def with_partners(
        self, row: int, category: str, found: Sequence[int] | np.ndarray
    ) -> list[int]:
        """`found` and the items of `category` stylists paired with `row` (their blended score
        may beat the nearest neighbours'), never `row` itself."""
        partners = [
            other
            for other in self.scorer.partners.get(row, {})
            if self.categories[other] == category
        ]
        return [r for r in dict.fromkeys([*map(int, found), *partners]) if r != row]

    def best_of(
        self, row: int, category: str, candidates: list[int], count: int
    ) -> list[tuple[int, float]]:
        """The `count` best `candidates` of `category` for `row`, by the served score
        (self.scores for one anchor of one category, without its per-category bookkeeping):
        exact even when the index's own distances are not."""
        if not candidates:
            return []
        scores = self.served_scores(row, category, candidates)
        best = np.argsort(-scores, kind="stable")[:count]
        return [(candidates[i], float(scores[i])) for i in best]

    def served_scores(self, row: int, category: str, candidates: list[int]) -> np.ndarray:
        """The served score of each of `candidates` (items of `category`) with `row`."""
        return self.scorer.scores(self.vectors, self.categories, [row], candidates, category)

    def nearest_to_vector(
        self, vector: np.ndarray, vector_category: str, category: str, count: int
    ) -> list[tuple[str, float]]:
        """vector_candidates() as (SKU, score) pairs."""
        found = self.vector_candidates(vector, vector_category, category, count)
        return [(sku, score) for sku, score, _ in found]

    def knows(self, sku: str) -> bool:
        return sku in self.row_of_sku

    def category_of(self, sku: str) -> str:
        """The category this index has `sku` in (one it knows)."""
        return self.categories[self.row_of_sku[sku]]

    def candidates(self, sku: str, category: str, count: int) -> Candidates:
        """The `count` items of `category` that go best with `sku` by the served score, best
        first, never `sku` itself (nearest_rows); none when this index does not know `sku`."""
        row = self.row_of_sku.get(sku)
        if row is None:
            return Candidates.none(category)
        return self._candidates(category, [row], self.nearest_rows(row, category, count))

    def candidates_each(self, asked: Sequence[tuple[str, str]], count: int) -> list[Candidates]:
        """candidates() of each (SKU, category) asked, read together (nearest_rows_each)."""
        answers = [Candidates.none(category) for _, category in asked]
        known = [
            (at, self.row_of_sku[sku], category)
            for at, (sku, category) in enumerate(asked)
            if sku in self.row_of_sku
        ]
        near = self.nearest_rows_each([(row, category) for _, row, category in known], count)
        for (at, row, category), found in zip(known, near, strict=True):
            answers[at] = self._candidates(category, [row], found)
        return answers

    def outfit_candidates(self, anchors: Sequence[str], category: str, count: int) -> Candidates:
        """Items of `category` for an outfit of `anchors` (those this index knows): each
        anchor's `count` best, ranked by the served score with all the anchors, best first."""
        rows = [self.row_of_sku[sku] for sku in anchors if sku in self.row_of_sku]
        near = list({other for r in rows for other, _ in self.nearest_rows(r, category, count)})
        if not near:
            return Candidates.none(category)
        scores = self.scores(rows, near)
        order = np.argsort(-scores, kind="stable")
        found = zip([near[i] for i in order.tolist()], scores[order].tolist(), strict=True)
        return self._candidates(category, rows, found)

    def vector_candidates(
        self, vector: np.ndarray, vector_category: str, category: str, count: int
    ) -> Candidates:
        """The `count` items of `category` most compatible with `vector`, a vector of this
        space that is no row of it (a shopper's photo) of `vector_category`, best first, by the
        scorer's query alone: a photo has no curated partners."""
        index = self.indexes.get(category)
        if index is None or count <= 0:
            return Candidates.none(category)
        query = self.scorer.query(vector, vector_category, category)
        rows, scores = self._search(index, query, count)
        return self._candidates(category, [], zip(rows, scores.tolist(), strict=True))

    def _candidates(
        self, category: str, anchors: Sequence[int], found: Iterable[tuple[int, float]]
    ) -> Candidates:
        """(row, score) pairs found for `anchors` as candidates, best first."""
        skus = self.skus
        partners = [mine for anchor in anchors if (mine := self.scorer.partners.get(anchor))]
        if len(partners) > 1:
            items = [(skus[r], s, any(r in mine for mine in partners), r) for r, s in found]
        else:  # one anchor, or none with curated partners (most items)
            mine = partners[0] if partners else {}
            items = [(skus[r], s, r in mine, r) for r, s in found]
        return Candidates(category, items)

    def diverse(self, rows: Sequence[Candidates], count: int, relevance: float) -> list[Candidates]:
        """At most `count` of each of `rows`, relevant and unlike each other (candidates.py)."""
        return diverse(rows, self.vectors, count, relevance)

    def score(self, sku: str, other: str) -> float | None:
        """The served score of `other` with `sku`; None unless this index knows both."""
        row, other_row = self.row_of_sku.get(sku), self.row_of_sku.get(other)
        if row is None or other_row is None:
            return None
        return float(self.scores([row], [other_row])[0])

    def outfit_scores(self, outfits: Sequence[Sequence[str]]) -> np.ndarray:
        """The served score of each whole outfit (SKUs this index knows): the mean over its
        items of each one's score with the rest (the scorer's, read whole where it can)."""
        rows = [[self.row_of_sku[sku] for sku in outfit] for outfit in outfits]
        return self.scorer.outfit_scores(self.vectors, self.categories, rows)

    def pair_scores(self, skus: Sequence[str]) -> np.ndarray:
        """The served score of every pair of `skus` (all known): [i, j] is j's with i."""
        rows = [self.row_of_sku[sku] for sku in skus]
        return np.stack([self.scores([row], rows) for row in rows])

    @staticmethod
    def _search(
        index: "faiss.Index | GrownIndex", query: np.ndarray, count: int
    ) -> tuple[list[int], np.ndarray]:
        """The rows of the `count` best inner products with `query` in `index`, best first,
        and those inner products."""
        query = np.ascontiguousarray(query[np.newaxis], dtype=np.float32)
        scores, rows = index.search(query, min(count, index.ntotal))
        found = rows[0] >= 0
        return [int(row) for row in rows[0][found]], scores[0][found]

    def save(self, directory: Path) -> None:
        (directory / INDEX_DIR).mkdir(parents=True, exist_ok=True)
        vectors = self.vectors
        if vectors.dtype != np.float32:  # (a layered array is the float32 it was saved as)
            vectors = np.asarray(vectors, dtype=np.float32)
        save_rows(directory / VECTORS_FILE, vectors, self.layers.get(VECTORS_FILE))
        category_files = {
            category: f"{INDEX_DIR}/{number:04d}.faiss"
            for number, category in enumerate(sorted(self.indexes))
        }
        added_files = {}
        for category, relative in category_files.items():
            index = self.indexes[category]
            if isinstance(index, GrownIndex):
                added_files[category] = relative.replace(".faiss", ".added.faiss")
                faiss.write_index(index.added, str(directory / added_files[category]))
                if index.graph_file is not None and index.graph_file.is_file():
                    os.link(index.graph_file, directory / relative)
                    continue
                index = index.graph
            elif (read_from := self.index_files.get(category)) and read_from.is_file():
                os.link(read_from, directory / relative)  # unchanged since it was read
                continue
            faiss.write_index(index, str(directory / relative))
        if self.neighbours is not None:
            self.save_neighbours(directory)
        self.scorer.save(directory)
        names = self._save_categories(directory / CATEGORY_CODES_FILE)
        self._save_skus(directory)
        (directory / ITEMS_FILE).write_text(
            json.dumps(
                {
                    "category_names": names,
                    "index_files": category_files,
                    "added_index_files": added_files,
                    "complements": self.complements,
                    "category_fallbacks": self.category_fallbacks,
                    "scorer": {"kind": self.scorer.kind, "options": self.scorer.options},
                }
            )
        )

    def _save_categories(self, path: Path) -> list[str]:
        """Each item's category by its number at `path`; returns the names numbered. As the
        codes file loaded and the rows that differ from it (added or recategorised, which a
        refresh has in its layer) when it has one; else whole."""
        layer = self.layers.get(CATEGORY_CODES_FILE)
        if layer is not None and layer.base.is_file():
            changed = [self.categories[row] for row in layer.rows.tolist()]
            names = list(dict.fromkeys([*self.category_names, *changed]))
            number = {name: code for code, name in enumerate(names)}
            base = np.load(layer.base, mmap_mode="r")
            overlay = np.fromiter((number[c] for c in changed), np.uint16, len(changed))
            save_rows(path, LayeredRows(base, layer.rows, overlay), layer)
            return names
        names = list(dict.fromkeys(self.categories))
        number = {name: code for code, name in enumerate(names)}
        codes = np.fromiter((number[c] for c in self.categories), np.uint16, len(self.categories))
        np.save(path, codes)
        return names

    def _save_skus(self, directory: Path) -> None:
        """The SKUs in JSON lines: the SKUs file loaded, linked, and those added after its
        (the SKUs layer's rows, when they are only added ones, and few); else whole."""
        layer, count = self.layers.get(SKUS_FILE), len(self.skus)
        first = count - len(layer.rows) if layer is not None else count
        if (
            layer is not None
            and layer.base.is_file()
            and len(layer.rows) <= LAYERED_UP_TO * count
            and np.array_equal(layer.rows, np.arange(first, count))
        ):
            os.link(layer.base, directory / SKUS_FILE)
            (directory / ADDED_SKUS_FILE).write_text(json.dumps(self.skus[first:]))
            return
        with (directory / SKUS_FILE).open("w") as lines:
            for start in range(0, count, SKUS_A_LINE):
                lines.write(json.dumps(self.skus[start : start + SKUS_A_LINE]) + "\n")

    @staticmethod
    def owns(relative: str) -> bool:
        """Whether save() writes this file of a version's (or may: a layer's)."""
        names = {ITEMS_FILE, SKUS_FILE, ADDED_SKUS_FILE, CATEGORY_CODES_FILE, VECTORS_FILE}
        names |= {NEIGHBOURS_FILE, NEIGHBOUR_SCORES_FILE, *scorer_files()}
        names |= {f"{name}{suffix}" for name in names for suffix in (ROWS_SUFFIX, OVERLAY_SUFFIX)}
        return relative in names or relative.startswith(f"{INDEX_DIR}/")

    def save_neighbours(self, directory: Path) -> None:
        if self.neighbours is None:
            raise ValueError("This index keeps no computed neighbours to save.")
        for name, array in (
            (NEIGHBOURS_FILE, self.neighbours),
            (NEIGHBOUR_SCORES_FILE, self.listed_scores()),
        ):
            save_rows(directory / name, array, self.layers.get(name))

    def listed_scores(self) -> Rows:
        """`neighbour_scores`, computed from `neighbours` when not kept: the served score of
        each listed item with its anchor, -inf where none is listed."""
        if self.neighbour_scores is not None:
            return self.neighbour_scores
        table = np.asarray(self.neighbours)
        scores = np.full(table.shape, -np.inf, dtype=np.float32)
        for category, anchors in self.rows_of_category.items():
            for slot, other in enumerate(self.complements_of(category)):
                for start in range(0, len(anchors), 4096):
                    chunk = anchors[start : start + 4096]
                    scores[chunk, slot] = self._listed_scores_of(other, chunk, table[chunk, slot])
        self.neighbour_scores = scores
        return scores

    @classmethod
    def load(
        cls, directory: Path, previous: "CompatibilityIndex | None" = None
    ) -> "CompatibilityIndex":
        """The saved index, memory-mapped read-only: the web workers of a machine share one copy
        of the vectors and codes in the page cache (and in the CPU's), not one each. What it
        shares with `previous`, an index this process loaded before (a refresh links the files
        it keeps: the SKUs, categories and category indexes of its version), is taken from it
        instead of read again: loading a refresh of a 1M catalog reads what the refresh
        changed."""
        items = json.loads((directory / ITEMS_FILE).read_text())
        catalog = _read_catalog(directory, items, previous)
        files = _mapped_files(directory, items, previous)
        index = cls(
            catalog.skus,
            catalog.categories,
            complements=items["complements"],
            scorer=load_scorer(directory, items.get("scorer")),
            category_fallbacks=items.get("category_fallbacks", {}),
            category_names=items.get("category_names", []),
            **files | {"layers": files["layers"] | catalog.layers},
        )
        index.__dict__.update(catalog.known)
        return index

    def mapped(self, directory: Path) -> "CompatibilityIndex":
        """This index as load(directory) gives it, for the directory it was just saved to: its
        arrays and indexes memory-mapped from the files, its items and curated pairs taken as
        they are instead of parsed again (a 1M catalog's take seconds)."""
        items = json.loads((directory / ITEMS_FILE).read_text())
        files = _mapped_files(directory, items)
        layers = files["layers"] | _catalog_layers(directory, len(self.skus))
        mapped = replace(self, **files | {"layers": layers}, category_names=items["category_names"])
        for known in ("row_of_sku", "rows_of_category", "category_of_row"):  # the same items
            if known in self.__dict__:
                mapped.__dict__[known] = self.__dict__[known]
        return mapped


def _same_file(one: Path | None, other: Path) -> bool:
    try:
        return one is not None and os.path.samefile(one, other)
    except OSError:  # gone: a collected version's
        return False


@dataclass
class _Catalog:
    """A saved index's SKUs and categories, the layers they were read from, and the cached
    properties of CompatibilityIndex already known of them (from an index loaded before)."""

    skus: list[str]
    categories: list[str]
    layers: dict[str, Layer]
    known: dict[str, object] = field(default_factory=dict)


def _catalog_layers(directory: Path, count: int) -> dict[str, Layer]:
    """The layers of a saved index's SKUs (rows: those added after its SKUs file's) and
    category codes, for an index of `count` items."""
    added_file = directory / ADDED_SKUS_FILE
    added = len(json.loads(added_file.read_text())) if added_file.is_file() else 0
    return {
        SKUS_FILE: Layer(directory / SKUS_FILE, np.arange(count - added, count)),
        CATEGORY_CODES_FILE: load_rows(directory / CATEGORY_CODES_FILE)[1],
    }


def _read_catalog(directory: Path, items: dict, previous: "CompatibilityIndex | None") -> _Catalog:
    """The SKUs and categories of the index saved in `directory`: taken from `previous` where
    it has them (_extended), else parsed from the files."""
    if "skus" in items:  # saved before SKUS_FILE
        return _Catalog(items["skus"], items["categories"], {})
    names = items["category_names"]
    codes, codes_layer = load_rows(directory / CATEGORY_CODES_FILE)
    added_file = directory / ADDED_SKUS_FILE
    added: list[str] = json.loads(added_file.read_text()) if added_file.is_file() else []
    first = len(codes) - len(added)
    layers = {
        SKUS_FILE: Layer(directory / SKUS_FILE, np.arange(first, len(codes))),
        CATEGORY_CODES_FILE: codes_layer,
    }
    if previous is not None and _leads(previous, layers, first, added):
        changed = [names[code] for code in np.asarray(codes[codes_layer.rows]).tolist()]
        return _extended(previous, layers, added, changed)
    skus: list[str] = []
    with (directory / SKUS_FILE).open() as lines:
        for line in lines:
            skus.extend(json.loads(line))
    categories = [names[code] for code in np.asarray(codes).tolist()]
    return _Catalog(skus + added, categories, layers)


def _leads(
    previous: "CompatibilityIndex", layers: dict[str, Layer], first: int, added: list[str]
) -> bool:
    """Whether `previous`'s items are the first of the index whose catalog `layers` describe
    (`first` SKUs in its SKUs file, then `added`): read from the same files (linked), its
    added SKUs the first of `added`, its recategorised rows among the rows that differ from
    the codes file."""
    skus, codes = layers[SKUS_FILE], layers[CATEGORY_CODES_FILE]
    theirs, their_codes = previous.layers.get(SKUS_FILE), previous.layers.get(CATEGORY_CODES_FILE)
    if theirs is None or their_codes is None:
        return False
    return (
        _same_file(theirs.base, skus.base)
        and _same_file(their_codes.base, codes.base)
        and len(previous.skus) - len(theirs.rows) == first
        and previous.skus[first:] == added[: len(previous.skus) - first]
        and bool(np.isin(their_codes.rows, codes.rows).all())
    )


def _extended(
    previous: "CompatibilityIndex", layers: dict[str, Layer], added: list[str], changed: list[str]
) -> _Catalog:
    """The catalog of an index that `previous` leads (_leads): its SKUs and categories, with
    `added` after the files' and the `changed` categories of the codes layer's rows; the SKUs'
    rows and the categories' rows derived from `previous`'s, not from the whole catalog."""
    rows = layers[CATEGORY_CODES_FILE].rows
    first = len(previous.skus) - len(previous.layers[SKUS_FILE].rows)
    skus = previous.skus[:first] + added
    categories = previous.categories[:first] + [""] * len(added)
    for row, category in zip(rows.tolist(), changed, strict=True):
        categories[row] = category
    known: dict[str, object] = {}
    if "row_of_sku" in previous.__dict__:
        known["row_of_sku"] = RowsOfSkus.of(skus, previous.row_of_sku)
    if "rows_of_category" in previous.__dict__:
        moved = np.zeros(len(skus), dtype=bool)
        moved[rows] = True  # every row after the files' too
        stayed = {c: mine[~moved[mine]] for c, mine in previous.rows_of_category.items()}
        arrived = {c: rows[at] for c, at in rows_by_category(changed).items()}
        merged = {}
        for category in stayed.keys() | arrived.keys():
            empty = np.empty(0, dtype=np.int64)
            both = np.concatenate([stayed.get(category, empty), arrived.get(category, empty)])
            if len(both):
                merged[category] = both if (np.diff(both) > 0).all() else np.sort(both)
        known["rows_of_category"] = dict(sorted(merged.items(), key=lambda kv: kv[1][0]))
    return _Catalog(skus, categories, layers, known)


def _mapped_files(
    directory: Path, items: dict, previous: "CompatibilityIndex | None" = None
) -> dict:
    """A saved index's vectors, category indexes (and the files they were read from),
    neighbours and their scores, memory-mapped, as CompatibilityIndex's fields; the neighbours
    and scores None in versions saved before they were kept. `items`: its items file. A
    category index read from the same file as `previous`'s (linked) is `previous`'s."""
    files = {category: directory / relative for category, relative in items["index_files"].items()}
    graphs: dict[str, faiss.Index] = {}
    for category, file in files.items():
        theirs = previous.indexes.get(category) if previous is not None else None
        if (
            previous is not None
            and theirs is not None
            and _same_file(previous.index_files.get(category), file)
        ):
            graphs[category] = theirs.graph if isinstance(theirs, GrownIndex) else theirs
        else:
            graphs[category] = faiss.read_index(str(file), faiss.IO_FLAG_MMAP_IFC)
    indexes: dict[str, faiss.Index | GrownIndex] = dict(graphs)
    for category, relative in items.get("added_index_files", {}).items():
        added = faiss.read_index(str(directory / relative))
        indexes[category] = GrownIndex(graphs[category], added, files[category])
    arrays, layers = {}, {}
    for name in (VECTORS_FILE, NEIGHBOURS_FILE, NEIGHBOUR_SCORES_FILE):
        if (directory / name).is_file():
            arrays[name], layers[name] = load_rows(directory / name)
    neighbours = arrays.get(NEIGHBOURS_FILE)
    return {
        "vectors": arrays[VECTORS_FILE],
        "indexes": indexes,
        "neighbours": neighbours,
        "neighbour_scores": arrays.get(NEIGHBOUR_SCORES_FILE) if neighbours is not None else None,
        "index_files": files,
        "layers": layers,
    }
