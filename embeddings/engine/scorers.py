"""How a model version scores items together: the served score, defined once, behind one seam.

A scorer is two things to the index (index.py): a *query* per anchor item and complementary
category, whose inner products with that category's item vectors find the candidates (the
FAISS search and the computed neighbours), and the *served score* of candidates with one or
more anchors, which ranks them exactly. A version's manifest records the scorer's kind and
options; `SCORERS` names the kinds a saved version can be loaded with. To add a scorer: a
class with this interface, registered in `SCORERS`, and its tests. numpy only."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from .cooccurrence import CoOccurrence
from .layered import Rows
from .outfit_model import UNKNOWN_CATEGORY, OutfitModel
from .space import PairWeights, QueryCentres

COOCCURRENCE_FILE = "cooccurrence.npz"
PAIR_WEIGHTS_FILE = "pair_weights.npz"
OUTFIT_MODEL_FILE = "outfit_model.npz"
QUERY_CENTRES_FILE = "query_centres.npz"


class Scorer(Protocol):
    kind: ClassVar[str]

    @property
    def options(self) -> dict[str, Any]:
        """What the manifest records of it, beside its kind."""
        ...

    @property
    def partners(self) -> Mapping[int, Mapping[int, int]]:
        """Rows the served score lifts beyond what the search finds for each row (curated
        pairs): the index merges them into the row's candidates."""
        ...

    def query(self, vector: np.ndarray, category: str, other: str) -> np.ndarray:
        """The query of `vector`, an item of `category`, for searching category `other`."""
        ...

    def queries(self, vectors: np.ndarray, categories: Sequence[str], other: str) -> np.ndarray:
        """query() of each of `vectors` (items of `categories`), as one array."""
        ...

    def penalties(self, vectors: np.ndarray, category: str) -> np.ndarray:
        """What every query for `category` takes from these items' scores (the hub penalty):
        a pair's score is symmetric but for it, (a∘w)·b − p(b) against (b∘w)·a − p(a)."""
        ...

    def scores(
        self,
        vectors: Rows,
        categories: Sequence[str],
        anchors: Sequence[int],
        candidates: Sequence[int],
        candidate_category: str | None = None,
    ) -> np.ndarray:
        """The served score of each candidate row with the anchor rows, (len(candidates),),
        rows of `vectors` and `categories`; `candidate_category` when the caller knows that
        every candidate is of it (a request's rows: no grouping by category)."""
        ...

    def outfit_scores(
        self, vectors: Rows, categories: Sequence[str], outfits: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """The score of each whole outfit (rows): the mean over its items of the item's score
        with the rest, as compatibility AUC reads an outfit. (len(outfits),)"""
        ...

    def curated_by(self, outfits: Sequence[Sequence[int]]) -> "Scorer":
        """The same scorer with these outfits (lists of rows) as its curated pairs."""
        ...

    def renumbered(self, new_row: np.ndarray) -> "Scorer":
        """The scorer after a refresh moved row r to new_row[r] (-1: removed)."""
        ...

    def borrowing(self, fallbacks: Mapping[str, str]) -> "Scorer":
        """The scorer with each new category scored as the known one it stands in for."""
        ...

    def save(self, directory: Path) -> None: ...

    @staticmethod
    def files() -> set[str]:
        """The files save() writes in a version's directory."""
        ...


class TypeAwareScorer:
    """Type-aware compatibility (space.py: Σ_d w_ab[d]·x[d]·y[d], the weights on the query
    side), less the hub penalty (space.QueryCentres, on the query side too), plus the curated
    co-occurrence bonus (cooccurrence.py), averaged over the anchors. Without pair weights it
    is cosine; without co-occurrence, content alone."""

    kind: ClassVar[str] = "type_aware"

    def __init__(
        self,
        pair_weights: PairWeights | None = None,
        cooccurrence: CoOccurrence | None = None,
        centres: QueryCentres | None = None,
    ) -> None:
        self.pair_weights = pair_weights if pair_weights is not None else PairWeights.none()
        self.cooccurrence = cooccurrence if cooccurrence is not None else CoOccurrence({}, 0.0)
        self.centres = centres if centres is not None else QueryCentres.none()

    @property
    def options(self) -> dict[str, Any]:
        return {
            "cooccurrence_weight": self.cooccurrence.weight,
            "second_order_weight": self.cooccurrence.second_order,
            "overlap_weight": self.cooccurrence.overlap,
            "exposure_weights": list(self.cooccurrence.exposure),  # cooccurrence.EXPOSURE's
            "category_pairs_weighted": len(self.pair_weights),
            "hub_penalty": self.centres.weight,
        }

    @property
    def partners(self) -> Mapping[int, Mapping[int, int]]:
        return self.cooccurrence.partners

    def query(self, vector: np.ndarray, category: str, other: str) -> np.ndarray:
        weights = self.pair_weights.between(category, other)
        query = vector if weights is None else vector * weights
        offset = self.centres.offset(other)
        return query if offset is None else query - offset

    def queries(self, vectors: np.ndarray, categories: Sequence[str], other: str) -> np.ndarray:
        queries = np.array(vectors, dtype=np.float32)
        of_vector = np.asarray(categories, dtype=object)
        for category in set(of_vector.tolist()):
            weights = self.pair_weights.between(category, other)
            if weights is not None:
                queries[of_vector == category] *= weights
        offset = self.centres.offset(other)
        return queries if offset is None else queries - offset

    def penalties(self, vectors: np.ndarray, category: str) -> np.ndarray:
        return self.centres.penalties(vectors, category)

    def scores(
        self,
        vectors: Rows,
        categories: Sequence[str],
        anchors: Sequence[int],
        candidates: Sequence[int],
        candidate_category: str | None = None,
    ) -> np.ndarray:
        if candidate_category is not None and len(anchors) == 1:
            anchor = anchors[0]
            query = self.query(vectors[anchor], categories[anchor], candidate_category)
            return vectors[candidates] @ query + self.cooccurrence.bonus(anchors, candidates)
        candidate_rows = np.asarray(candidates, dtype=np.int64)
        total = np.zeros(len(candidate_rows), dtype=np.float32)
        if not len(anchors) or not len(candidate_rows):
            return total
        candidate_categories = np.asarray([categories[c] for c in candidate_rows.tolist()])
        for category in np.unique(candidate_categories).tolist():
            in_category = candidate_categories == category
            queries = np.stack(
                [self.query(vectors[anchor], categories[anchor], category) for anchor in anchors]
            )
            total[in_category] = (vectors[candidate_rows[in_category]] @ queries.T).mean(axis=1)
        return total + self.cooccurrence.bonus(anchors, candidates)

    def outfit_scores(
        self, vectors: Rows, categories: Sequence[str], outfits: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """From one matrix of the pair scores among the outfits' items (each item's row
        scored once, not once per outfit it is in)."""
        rows = list(dict.fromkeys(row for outfit in outfits for row in outfit))
        at = {row: i for i, row in enumerate(rows)}
        pairs = np.stack([self.scores(vectors, categories, [row], rows) for row in rows])
        totals = np.full(len(outfits), -np.inf, dtype=np.float32)
        for number, outfit in enumerate(outfits):
            if len(outfit) >= 2:
                members = [at[row] for row in outfit]
                block = pairs[np.ix_(members, members)]  # [j, i]: i's score with anchor j
                np.fill_diagonal(block, 0.0)
                totals[number] = block.sum() / (len(members) * (len(members) - 1))
        return totals

    def content_only(self) -> "TypeAwareScorer":
        """The same without the curated bonus: what a product new to the outfits gets."""
        return TypeAwareScorer(self.pair_weights, centres=self.centres)

    def with_cooccurrence_weight(self, weight: float) -> "TypeAwareScorer":
        """The blend of direct co-occurrence alone at `weight` (0: content alone)."""
        partners = self.cooccurrence.weighted(weight)
        return TypeAwareScorer(self.pair_weights, partners, self.centres)

    def curated_by(self, outfits: Sequence[Sequence[int]]) -> "TypeAwareScorer":
        now = self.cooccurrence
        partners = CoOccurrence.from_outfits(outfits, 0.0).weighted(*now.weights)
        return TypeAwareScorer(self.pair_weights, partners, self.centres)

    def renumbered(self, new_row: np.ndarray) -> "TypeAwareScorer":
        partners = self.cooccurrence.renumbered(new_row)
        return TypeAwareScorer(self.pair_weights, partners, self.centres)

    def borrowing(self, fallbacks: Mapping[str, str]) -> "TypeAwareScorer":
        weights = self.pair_weights.borrowing(fallbacks)
        centres = self.centres.borrowing(fallbacks)
        if weights is self.pair_weights and centres is self.centres:
            return self
        return TypeAwareScorer(weights, self.cooccurrence, centres)

    def save(self, directory: Path) -> None:
        self.cooccurrence.save(directory / COOCCURRENCE_FILE)
        self.pair_weights.save(directory / PAIR_WEIGHTS_FILE)
        self.centres.save(directory / QUERY_CENTRES_FILE)

    @staticmethod
    def files() -> set[str]:
        return {COOCCURRENCE_FILE, PAIR_WEIGHTS_FILE, QUERY_CENTRES_FILE}

    @classmethod
    def load(cls, directory: Path, options: Mapping[str, Any]) -> "TypeAwareScorer":
        return cls(
            PairWeights.load(directory / PAIR_WEIGHTS_FILE),
            CoOccurrence.load(directory / COOCCURRENCE_FILE),
            QueryCentres.load(directory / QUERY_CENTRES_FILE),
        )


class OutfitScorer:
    """The outfit-level score: for an outfit of two or more anchors, their type-aware query (the
    mean of their pair queries) corrected by an outfit-level model that reads the anchors
    together with the category wanted (outfit_model.py), plus the same curated bonus. One
    anchor is a pair, scored and searched as the type-aware scorer does: a product page's
    row costs what it did (the model's forward pass is ~0.2-0.9 ms, a pair score ~2 µs), and
    the model re-ranks where an outfit is read whole: complete the look, an outfit's
    completion, FITB and compatibility."""

    kind: ClassVar[str] = "outfit_transformer"

    def __init__(self, base: TypeAwareScorer, model: OutfitModel) -> None:
        self.base = base
        self.model = model

    @property
    def options(self) -> dict[str, Any]:
        shape = self.model.shape
        return self.base.options | {"layers": shape.layers, "heads": shape.heads}

    @property
    def partners(self) -> Mapping[int, Mapping[int, int]]:
        return self.base.partners

    def query(self, vector: np.ndarray, category: str, other: str) -> np.ndarray:
        return self.base.query(vector, category, other)

    def queries(self, vectors: np.ndarray, categories: Sequence[str], other: str) -> np.ndarray:
        return self.base.queries(vectors, categories, other)

    def penalties(self, vectors: np.ndarray, category: str) -> np.ndarray:
        return self.base.penalties(vectors, category)

    def outfit_queries(
        self, vectors: Rows, categories: Sequence[str], anchors: Sequence[int], wanted: list[str]
    ) -> np.ndarray:
        """The query of the outfit of `anchors` for each category `wanted`, (len(wanted), d)."""
        anchor_vectors = np.asarray(vectors[list(anchors)], dtype=np.float32)
        anchor_categories = [categories[a] for a in anchors]
        base = np.stack(
            [self.base.queries(anchor_vectors, anchor_categories, c).mean(axis=0) for c in wanted]
        )
        codes = self.model.codes(anchor_categories)
        targets = self.model.codes(wanted)
        corrections = self.model.corrections(
            np.broadcast_to(anchor_vectors, (len(wanted), *anchor_vectors.shape)),
            np.broadcast_to(codes, (len(wanted), len(codes))),
            targets,
        )
        # A category the model never saw (nor borrowed) has no trained embedding: pairs alone.
        return base + corrections * (targets != UNKNOWN_CATEGORY)[:, None]

    def scores(
        self,
        vectors: Rows,
        categories: Sequence[str],
        anchors: Sequence[int],
        candidates: Sequence[int],
        candidate_category: str | None = None,
    ) -> np.ndarray:
        if len(anchors) < 2:
            return self.base.scores(vectors, categories, anchors, candidates, candidate_category)
        candidate_rows = np.asarray(candidates, dtype=np.int64)
        total = np.zeros(len(candidate_rows), dtype=np.float32)
        if not len(candidate_rows):
            return total
        if candidate_category is not None:
            of_candidate = np.full(len(candidate_rows), candidate_category, dtype=object)
        else:
            of_candidate = np.asarray(
                [categories[c] for c in candidate_rows.tolist()], dtype=object
            )
        wanted = sorted(set(of_candidate.tolist()))
        queries = self.outfit_queries(vectors, categories, anchors, wanted)
        for category, query in zip(wanted, queries, strict=True):
            in_category = of_candidate == category
            total[in_category] = vectors[candidate_rows[in_category]] @ query
        return total + self.base.cooccurrence.bonus(anchors, candidates)

    def outfit_scores(
        self, vectors: Rows, categories: Sequence[str], outfits: Sequence[Sequence[int]]
    ) -> np.ndarray:
        """Every item of every outfit against the rest in one forward pass per outfit size
        (complete the look ranks a few dozen outfits: one batch, not one pass per item)."""
        totals = np.zeros(len(outfits), dtype=np.float32)
        by_size: dict[int, list[int]] = {}
        for number, outfit in enumerate(outfits):
            by_size.setdefault(len(outfit), []).append(number)
        for size, numbers in by_size.items():
            if size < 3:  # one anchor is a pair
                for number in numbers:
                    totals[number] = leave_one_out(self.base, vectors, categories, outfits[number])
                continue
            items = np.array([outfits[n] for n in numbers], dtype=np.int64)  # (B, size)
            rest = np.array([[j for j in range(size) if j != i] for i in range(size)])
            anchors = items[:, rest].reshape(-1, size - 1)  # (B·size, size − 1)
            targets = items.reshape(-1)
            anchor_vectors = np.asarray(vectors[anchors.reshape(-1).tolist()], dtype=np.float32)
            anchor_vectors = anchor_vectors.reshape(*anchors.shape, -1)
            target_vectors = np.asarray(vectors[targets.tolist()], dtype=np.float32)
            target_categories = [categories[t] for t in targets.tolist()]
            base = np.stack(
                [
                    self.base.queries(vs, [categories[a] for a in row], wanted).mean(axis=0)
                    for vs, row, wanted in zip(
                        anchor_vectors, anchors.tolist(), target_categories, strict=True
                    )
                ]
            )
            target_codes = self.model.codes(target_categories)
            corrections = self.model.corrections(
                anchor_vectors,
                self.model.codes([categories[a] for a in anchors.reshape(-1).tolist()]).reshape(
                    anchors.shape
                ),
                target_codes,
            )
            queries = base + corrections * (target_codes != UNKNOWN_CATEGORY)[:, None]
            item_scores = (target_vectors * queries).sum(axis=1)
            bonus = np.array(
                [
                    self.base.cooccurrence.bonus(row, [t])[0]
                    for row, t in zip(anchors.tolist(), targets.tolist(), strict=True)
                ],
                dtype=np.float32,
            )
            totals[numbers] = (item_scores + bonus).reshape(len(numbers), size).mean(axis=1)
        return totals

    def content_only(self) -> "OutfitScorer":
        return OutfitScorer(self.base.content_only(), self.model)

    def with_cooccurrence_weight(self, weight: float) -> "OutfitScorer":
        return OutfitScorer(self.base.with_cooccurrence_weight(weight), self.model)

    def curated_by(self, outfits: Sequence[Sequence[int]]) -> "OutfitScorer":
        return OutfitScorer(self.base.curated_by(outfits), self.model)

    def renumbered(self, new_row: np.ndarray) -> "OutfitScorer":
        return OutfitScorer(self.base.renumbered(new_row), self.model)

    def borrowing(self, fallbacks: Mapping[str, str]) -> "OutfitScorer":
        base, model = self.base.borrowing(fallbacks), self.model.borrowing(fallbacks)
        return self if base is self.base and model is self.model else OutfitScorer(base, model)

    def save(self, directory: Path) -> None:
        self.base.save(directory)
        self.model.save(directory / OUTFIT_MODEL_FILE)

    @staticmethod
    def files() -> set[str]:
        return TypeAwareScorer.files() | {OUTFIT_MODEL_FILE}

    @classmethod
    def load(cls, directory: Path, options: Mapping[str, Any]) -> "OutfitScorer":
        return cls(
            TypeAwareScorer.load(directory, options),
            OutfitModel.load(directory / OUTFIT_MODEL_FILE),
        )


def query_centres(
    pair_weights: PairWeights,
    vectors: np.ndarray,
    categories: Sequence[str],
    outfits: Sequence[Sequence[int]],
    weight: float,
) -> QueryCentres:
    """The hub penalty's centres of `outfits` (rows of `vectors`) at `weight`: for each
    category an outfit holds, the type-aware query of its items of the other categories,
    averaged over the outfits."""
    if not weight:
        return QueryCentres.none()
    plain = TypeAwareScorer(pair_weights)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for outfit in outfits:
        for wanted in {categories[row] for row in outfit}:
            anchors = [row for row in outfit if categories[row] != wanted]
            if anchors:
                queries = plain.queries(vectors[anchors], [categories[r] for r in anchors], wanted)
                sums[wanted] = sums.get(wanted, 0.0) + queries.mean(axis=0)
                counts[wanted] = counts.get(wanted, 0) + 1
    return QueryCentres({name: total / counts[name] for name, total in sums.items()}, weight)


def leave_one_out(
    scorer: Scorer, vectors: Rows, categories: Sequence[str], outfit: Sequence[int]
) -> float:
    """The mean over an outfit's items of each one's score with the rest."""
    if len(outfit) < 2:
        return float("-inf")
    return float(
        np.mean(
            [
                scorer.scores(vectors, categories, [o for o in outfit if o != item], [item])[0]
                for item in outfit
            ]
        )
    )


# The kinds of scorer a saved version names (items.json's "scorer"), and how each is loaded.
SCORERS: dict[str, Any] = {TypeAwareScorer.kind: TypeAwareScorer, OutfitScorer.kind: OutfitScorer}

# What a training may be asked to serve (TrainingOptions.scorer): "auto" trains the outfit-level
# model too and serves whichever fills the held-out blanks better (type-aware when they tie).
AUTO_SCORER = "auto"
SCORER_CHOICES = (AUTO_SCORER, TypeAwareScorer.kind, OutfitScorer.kind)


def load_scorer(directory: Path, saved: Mapping[str, Any] | None) -> Scorer:
    """The scorer a version saved in `directory` as `saved` ({"kind", "options"}); versions
    saved before scorers were named are type-aware."""
    kind = (saved or {}).get("kind", TypeAwareScorer.kind)
    if kind not in SCORERS:
        raise ValueError(f"unknown scorer {kind!r}: this code knows {', '.join(sorted(SCORERS))}")
    return SCORERS[kind].load(directory, (saved or {}).get("options", {}))


def scorer_files() -> set[str]:
    """Every file a registered scorer may write in a version's directory."""
    return set().union(*(scorer.files() for scorer in SCORERS.values()))


@dataclass
class SkuScorer:
    """A scorer over items named by SKU: the evaluation's `Scorer` (evaluate.py)."""

    scorer: Scorer
    vectors: Rows
    categories: Sequence[str]
    row_of: Mapping[str, int]

    def __contains__(self, item: object) -> bool:
        return item in self.row_of

    def __call__(self, question: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        anchors = [self.row_of[item] for item in question]
        rows = [self.row_of[item] for item in candidates]
        return self.scorer.scores(self.vectors, self.categories, anchors, rows)
