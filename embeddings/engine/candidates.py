"""What the index proposes to the recommendation service: for one category, SKUs with their
served scores, best first, and whether stylists paired each with an anchor. The service keeps
those it may show and asks for diverse rows; it never handles the index's row numbers.
Plain tuples in a list: a request handles a few dozen per category, where numpy calls or an
object per item would cost more than the work (arrays per field made an answer 0.27 ms
slower)."""

from collections.abc import Callable, Iterator, Sequence

from .diversity import diverse_positions
from .layered import Rows

# (SKU, served score with the anchors, curated: in a stylist's outfit with an anchor, row)
Candidate = tuple[str, float, bool, int]


class Candidates:
    __slots__ = ("category", "items")

    def __init__(self, category: str, items: list[Candidate]) -> None:
        self.category, self.items = category, items

    @classmethod
    def none(cls, category: str) -> "Candidates":
        return cls(category, [])

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[str, float, bool]]:
        """(SKU, score, curated) of each, best first."""
        return ((sku, score, curated) for sku, score, curated, _ in self.items)

    @property
    def skus(self) -> list[str]:
        return [item[0] for item in self.items]

    def where(self, keep: Callable[[str], bool]) -> "Candidates":
        """Those whose SKU `keep` accepts, in the same order."""
        return Candidates(self.category, [item for item in self.items if keep(item[0])])

    def best(self, count: int) -> "Candidates":
        return Candidates(self.category, self.items[:count])


def diverse(
    rows: Sequence[Candidates], vectors: Rows, count: int, relevance: float
) -> list[Candidates]:
    """At most `count` of each, picked by maximal marginal relevance over their `vectors` (the
    index's: diversity.py), all categories at once."""
    picked = diverse_positions(
        [[(row, score) for _, score, _, row in c.items] for c in rows], vectors, count, relevance
    )
    return [
        Candidates(c.category, [c.items[p] for p in positions])
        for c, positions in zip(rows, picked, strict=True)
    ]
