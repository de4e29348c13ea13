"""What answers for many products at once (a batch, an export, the API's pages) need to know of
a model version's items, as arrays by the version's rows: whether each may be shown in its row
(an active product still of the category the version has it in), in stock, and which look it
is (twins share one). Their candidates' table is then filtered and deduplicated in a few numpy
calls instead of a Python call per candidate (a batch of 100 products has ~12,000).

Made on first use for a snapshot's products and a version, kept with the snapshot (snapshots
of the same products share them), and for the next snapshot patched, not remade, for its few
changed products; a new index (an activation, a refresh) has them made anew on its first
batch: ~70 ms at 100k items (AMD EPYC; 1M not measured). 10 bytes per item (10 MB at 1M)."""

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from catalog.models import Category
from embeddings.engine.index import CompatibilityIndex


class Card(Protocol):
    """What the facts read of a serving snapshot's card (outfits.serving.ProductCard, which
    keeps these facts: no import back up to it)."""

    @property
    def category(self) -> Category: ...
    @property
    def in_stock(self) -> bool: ...
    @property
    def sku(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def title_made_up(self) -> bool: ...
    @property
    def image(self) -> str: ...
    @property
    def colour(self) -> str: ...
    @property
    def style(self) -> str: ...


# A snapshot built from its predecessor with at most this many changed SKUs patches the
# predecessor's facts; more, and they are remade whole.
PATCHED_UP_TO = 10_000


@dataclass(frozen=True)
class RowFacts:
    shown: np.ndarray  # bool: an active product of the category the version has it in
    in_stock: np.ndarray  # bool
    look: np.ndarray  # int64: look_of() each product; twins share it

    @classmethod
    def of(cls, index: CompatibilityIndex, products: Mapping[str, Card]) -> "RowFacts":
        count = len(index.skus)
        cards = [products.get(sku) for sku in index.skus]
        pairs = zip(cards, index.categories, strict=True)
        shown = np.fromiter((c is not None and c.category.name == n for c, n in pairs), bool, count)
        in_stock = np.fromiter((c is not None and c.in_stock for c in cards), bool, count)
        look = np.fromiter((look_of(c) for c in cards), np.int64, count)
        return cls(shown, in_stock, look)

    def patched(
        self,
        index: CompatibilityIndex,
        products: Mapping[str, Card],
        changed: Iterable[str],
    ) -> "RowFacts":
        """These facts with the rows of the `changed` SKUs made again (copies: a snapshot's
        facts are never written once made)."""
        shown, in_stock, look = self.shown.copy(), self.in_stock.copy(), self.look.copy()
        for sku in changed:
            row = index.row_of_sku.get(sku)
            if row is None:
                continue
            card = products.get(sku)
            shown[row] = card is not None and card.category.name == index.categories[row]
            in_stock[row] = card is not None and card.in_stock
            look[row] = look_of(card)
        return RowFacts(shown, in_stock, look)


def look_of(card: Card | None) -> int:
    """One number per look: products a shopper cannot tell apart share it. A 64-bit hash: two
    different looks among the ~24 candidates of one row share one by chance about once in
    10^16 rows."""
    return 0 if card is None else hash(look_key(card))


def look_key(card: Card) -> tuple[str, ...]:
    """One style (the catalog's style or parent code): colourways of one garment, shown once
    a row as a distinct attribute is. Else the same title and colour (casefolded) where the
    title is the merchant's own: one product in several SKUs, or twins. A title an import
    made of colour and category ("Grey dresses": Mango's 9,222 products have 300) names
    hundreds of different garments and tells no twins: those are told by their picture
    (stored by its content: the same file, the same name)."""
    if card.style:
        return ("style", card.style.casefold())
    if not card.title_made_up:
        return ("title", card.title.casefold(), card.colour.casefold())
    return ("picture", card.image) if card.image else ("sku", card.sku)


class RowFactsCache:
    """A snapshot's RowFacts by model version (its index), made on first use; and, for a
    snapshot built from its predecessor, the predecessor's cache and the SKUs changed since,
    to patch its facts instead of remaking them."""

    def __init__(
        self, previous: "RowFactsCache | None" = None, changed: Sequence[str] | None = None
    ) -> None:
        self._made: dict[int, tuple[weakref.ref, RowFacts]] = {}
        self._lock = threading.Lock()
        self._previous = previous if changed is not None and len(changed) <= PATCHED_UP_TO else None
        self._changed = changed or ()
        if previous is not None:
            previous._previous = None  # one step back at most: no chain of old snapshots' facts

    def facts(self, index: CompatibilityIndex, products: Mapping[str, Card]) -> RowFacts:
        made = self._made.get(id(index))
        if made is not None and made[0]() is index:
            return made[1]
        with self._lock:  # a worker's threads make them once
            made = self._made.get(id(index))
            if made is not None and made[0]() is index:
                return made[1]
            previous = self._previous  # read once: building the next snapshot clears it
            before = previous._made.get(id(index)) if previous is not None else None
            if before is not None and before[0]() is index:
                facts = before[1].patched(index, products, self._changed)
            else:
                facts = RowFacts.of(index, products)
            self._made = {k: v for k, v in self._made.items() if v[0]() is not None}
            self._made[id(index)] = (weakref.ref(index), facts)
            return facts
