"""What the index proposes to the recommendation service: for one category, SKUs with their
served scores, best first, and whether stylists paired each with an anchor. The service keeps
those it may show and asks for diverse rows; it never handles the index's row numbers.
Columnar (one array per field), not an object per item: a request reads a few hundred."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .diversity import most_relevant_and_diverse_rows
from .layered import Rows


@dataclass(frozen=True)
class Candidates:
    category: str
    skus: list[str]
    scores: np.ndarray  # the served score of each with the anchors
    curated: np.ndarray  # bool: stylists put it in an outfit with an anchor
    rows: np.ndarray  # the index's rows, for the engine's own use (diversity)

    @classmethod
    def none(cls, category: str) -> "Candidates":
        nothing = np.zeros(0)
        return cls(category, [], nothing.astype(np.float32), nothing.astype(bool), nothing)

    def __len__(self) -> int:
        return len(self.skus)

    def __iter__(self) -> Iterator[tuple[str, float, bool]]:
        """(SKU, score, curated) of each, best first."""
        return zip(self.skus, self.scores.tolist(), self.curated.tolist(), strict=True)

    def keeping(self, keep: Sequence[bool]) -> "Candidates":
        """Those where `keep` is true, in the same order."""
        chosen = np.flatnonzero(np.asarray(keep, dtype=bool))
        return self.at(chosen)

    def best(self, count: int) -> "Candidates":
        return self.at(np.arange(min(count, len(self))))

    def at(self, positions: np.ndarray) -> "Candidates":
        return Candidates(
            self.category,
            [self.skus[i] for i in positions.tolist()],
            self.scores[positions],
            self.curated[positions],
            self.rows[positions],
        )


def diverse(
    rows: Sequence[Candidates], vectors: Rows, count: int, relevance: float
) -> list[Candidates]:
    """At most `count` of each, picked by maximal marginal relevance over their `vectors` (the
    index's: diversity.py), all categories at once."""
    picked = most_relevant_and_diverse_rows(
        [list(zip(c.rows.tolist(), c.scores.tolist(), strict=True)) for c in rows],
        vectors,
        count,
        relevance,
    )
    chosen = []
    for candidates, picks in zip(rows, picked, strict=True):
        position = {row: i for i, row in enumerate(candidates.rows.tolist())}
        chosen.append(candidates.at(np.asarray([position[r] for r, _ in picks], dtype=np.int64)))
    return chosen
