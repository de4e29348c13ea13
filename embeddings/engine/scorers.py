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
from .space import PairWeights

COOCCURRENCE_FILE = "cooccurrence.npz"
PAIR_WEIGHTS_FILE = "pair_weights.npz"


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
    side) plus the curated co-occurrence bonus (cooccurrence.py), averaged over the anchors.
    Without pair weights it is cosine; without co-occurrence, content alone."""

    kind: ClassVar[str] = "type_aware"

    def __init__(
        self, pair_weights: PairWeights | None = None, cooccurrence: CoOccurrence | None = None
    ) -> None:
        self.pair_weights = pair_weights if pair_weights is not None else PairWeights.none()
        self.cooccurrence = cooccurrence if cooccurrence is not None else CoOccurrence({}, 0.0)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "cooccurrence_weight": self.cooccurrence.weight,
            "category_pairs_weighted": len(self.pair_weights),
        }

    @property
    def partners(self) -> Mapping[int, Mapping[int, int]]:
        return self.cooccurrence.partners

    def query(self, vector: np.ndarray, category: str, other: str) -> np.ndarray:
        weights = self.pair_weights.between(category, other)
        return vector if weights is None else vector * weights

    def queries(self, vectors: np.ndarray, categories: Sequence[str], other: str) -> np.ndarray:
        queries = np.array(vectors, dtype=np.float32)
        of_vector = np.asarray(categories, dtype=object)
        for category in set(of_vector.tolist()):
            weights = self.pair_weights.between(category, other)
            if weights is not None:
                queries[of_vector == category] *= weights
        return queries

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

    def content_only(self) -> "TypeAwareScorer":
        """The same without the curated bonus: what a product new to the outfits gets."""
        return TypeAwareScorer(self.pair_weights)

    def with_cooccurrence_weight(self, weight: float) -> "TypeAwareScorer":
        return TypeAwareScorer(self.pair_weights, CoOccurrence(self.cooccurrence.partners, weight))

    def curated_by(self, outfits: Sequence[Sequence[int]]) -> "TypeAwareScorer":
        weight = self.cooccurrence.weight
        return TypeAwareScorer(self.pair_weights, CoOccurrence.from_outfits(outfits, weight))

    def renumbered(self, new_row: np.ndarray) -> "TypeAwareScorer":
        partners: dict[int, dict[int, int]] = {}
        for row, seen in self.cooccurrence.partners.items():
            if new_row[row] < 0:
                continue
            kept = {
                int(new_row[other]): count for other, count in seen.items() if new_row[other] >= 0
            }
            if kept:
                partners[int(new_row[row])] = kept
        return TypeAwareScorer(self.pair_weights, CoOccurrence(partners, self.cooccurrence.weight))

    def borrowing(self, fallbacks: Mapping[str, str]) -> "TypeAwareScorer":
        weights = self.pair_weights.borrowing(fallbacks)
        return self if weights is self.pair_weights else TypeAwareScorer(weights, self.cooccurrence)

    def save(self, directory: Path) -> None:
        self.cooccurrence.save(directory / COOCCURRENCE_FILE)
        self.pair_weights.save(directory / PAIR_WEIGHTS_FILE)

    @staticmethod
    def files() -> set[str]:
        return {COOCCURRENCE_FILE, PAIR_WEIGHTS_FILE}

    @classmethod
    def load(cls, directory: Path, options: Mapping[str, Any]) -> "TypeAwareScorer":
        return cls(
            PairWeights.load(directory / PAIR_WEIGHTS_FILE),
            CoOccurrence.load(directory / COOCCURRENCE_FILE),
        )


# The kinds of scorer a saved version names (items.json's "scorer"), and how each is loaded.
SCORERS = {TypeAwareScorer.kind: TypeAwareScorer}


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
