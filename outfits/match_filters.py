"""What a storefront may ask of a row of matches beyond the model: categories, stock, price,
SKUs to leave out, attribute filters, and boosts that lift some products up their row.

Cards in the serving snapshot hold what every answer needs and no more (a million of them live
in each web worker); attributes and arrival dates are read from the database for the few dozen
candidates of an answer, and only when a filter or boost asks for them."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from catalog.models import Product
from embeddings.engine.candidates import Candidates

NEW_ARRIVALS = "new_arrivals"
IN_STOCK = "in_stock"


class InvalidFilter(ValueError):
    """A filter or boost that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class Boost:
    """Lifts the products of a row that are new arrivals (created within
    OUTFITS_NEW_ARRIVAL_DAYS), in stock, or have an attribute's value, by OUTFITS_MATCH_BOOST
    each, before the row is ranked and made diverse."""

    name: str  # NEW_ARRIVALS, IN_STOCK or an attribute (casefolded)
    value: str = ""  # the attribute's value (casefolded); "" for the other two

    @classmethod
    def parse(cls, text: str) -> "Boost":
        """`new_arrivals`, `in_stock` or `attribute:value`."""
        name, colon, value = (part.strip().casefold() for part in text.partition(":"))
        if not colon and name in (NEW_ARRIVALS, IN_STOCK):
            return cls(name)
        if colon and name and value:
            return cls(name, value)
        raise InvalidFilter(
            f"unknown boost {text.strip()!r}: use new_arrivals, in_stock or attribute:value"
        )

    @property
    def reads_catalog(self) -> bool:
        return self.name != IN_STOCK


def parse_attribute_filters(text: str) -> dict[str, frozenset[str]]:
    """`gender:female,gender:unisex,line:woman` → {gender: {female, unisex}, line: {woman}}:
    values of one attribute are alternatives, different attributes must all hold. Casefolded."""
    wanted: dict[str, set[str]] = {}
    for part in filter(str.strip, text.split(",")):
        name, colon, value = (p.strip().casefold() for p in part.partition(":"))
        if not (colon and name and value):
            raise InvalidFilter(f"attribute filter {part.strip()!r} is not attribute:value")
        wanted.setdefault(name, set()).add(value)
    return {name: frozenset(values) for name, values in wanted.items()}


def parse_boosts(text: str) -> tuple[Boost, ...]:
    """`new_arrivals,line:premium` → its boosts, each once (a boost named twice lifts once)."""
    return tuple(dict.fromkeys(Boost.parse(b) for b in text.split(",") if b.strip()))


def parse_skus(text: str) -> frozenset[str]:
    """`A1, A2` → {A1, A2}: comma-separated SKUs (a SKU never starts or ends with a space)."""
    return frozenset(sku.strip() for sku in text.split(",") if sku.strip())


@dataclass(frozen=True)
class MatchFilters:
    """What a storefront may ask for: `categories` (names; None: every complementary one),
    items in stock only, a maximum price, SKUs to leave out (`exclude`: what the shopper owns
    or bought), attribute values to keep (`attributes`: parse_attribute_filters) and boosts."""

    categories: Sequence[str] | None = None
    in_stock_only: bool = True
    price_max: Decimal | None = None
    exclude: frozenset[str] = frozenset()
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    boosts: tuple[Boost, ...] = ()

    def allows(self, category: str) -> bool:
        return self.categories is None or category in self.categories

    @property
    def by_rows_alone(self) -> bool:
        """True: what the filters hide is known of every item of a version by its row
        (row_facts): no price, attribute or boost."""
        return self.price_max is None and not self.attributes and not self.boosts

    @property
    def reads_catalog(self) -> bool:
        """True: the answer needs the candidates' attributes or arrival dates."""
        return bool(self.attributes) or any(b.reads_catalog for b in self.boosts)

    def fetch(self, wanted: int, deeper: int) -> int:
        """How many candidates to ask the index for: `wanted`, or with attribute filters
        `deeper` when that is more, since they may drop most of the nearest (a men's filter
        over a mostly women's catalog). For a product, `deeper` is how far its computed lists
        go (no search); a photo is searched anyway. A rare value can leave a row short."""
        return max(wanted, deeper) if self.attributes else wanted


def filters_from_text(
    categories: Sequence[str] | None = None,
    in_stock_only: bool = True,
    exclude: str = "",
    attributes: str = "",
    boost: str = "",
) -> MatchFilters:
    """MatchFilters from the words a form, a command or a queued task carries (InvalidFilter
    says what is wrong)."""
    return MatchFilters(
        categories=list(categories) if categories else None,
        in_stock_only=in_stock_only,
        exclude=parse_skus(exclude),
        attributes=parse_attribute_filters(attributes),
        boosts=parse_boosts(boost),
    )


NO_FILTERS = MatchFilters()  # the defaults: every complementary category, in stock only


@dataclass(frozen=True, slots=True)
class ProductFacts:
    attributes: dict[str, str]  # casefolded names and values
    created_at: datetime


OWN_COLOUR = "colour"
_remembered = threading.local()
REMEMBERED_FACTS = 50_000  # about 20 MB of facts at most


@contextmanager
def remembered_facts() -> Iterator[None]:
    """Within it, product_facts() remembers what it read (the most recent REMEMBERED_FACTS):
    the answers of a batch or an export share most candidates, so each is read once."""
    before = getattr(_remembered, "facts", None)
    _remembered.facts = OrderedDict()
    try:
        yield
    finally:
        _remembered.facts = before


def product_facts(skus: Iterable[str]) -> dict[str, ProductFacts | None]:
    """The attributes and arrival date of the products with these SKUs (None: not active):
    one query by the SKU index, for those not remembered (remembered_facts)."""
    memory: OrderedDict[str, ProductFacts | None] | None = getattr(_remembered, "facts", None)
    wanted = set(skus)
    found: dict[str, ProductFacts | None] = {}
    if memory is not None:
        found = {sku: memory[sku] for sku in wanted if sku in memory}
        wanted -= found.keys()
    if wanted:
        rows = Product.objects.filter(sku__in=wanted, active=True).values_list(
            "sku", "colour", "attributes", "created_at"
        )
        read: dict[str, ProductFacts | None] = dict.fromkeys(wanted)
        for sku, colour, attributes, created_at in rows:
            # The product's own colour is an attribute too (an attribute column of that name
            # says more, and wins): `colour:red` filters as a shopper expects.
            named = {OWN_COLOUR: colour} | (attributes or {})
            read[sku] = ProductFacts(
                {str(k).casefold(): str(v).casefold() for k, v in named.items() if v != ""},
                created_at,
            )
        found |= read
        if memory is not None:
            memory.update(read)
            while len(memory) > REMEMBERED_FACTS:
                memory.popitem(last=False)
    return found


def has_attributes(facts: ProductFacts | None, wanted: Mapping[str, frozenset[str]]) -> bool:
    return facts is not None and all(
        facts.attributes.get(name) in values for name, values in wanted.items()
    )


@dataclass(frozen=True)
class Refinement:
    """An answer's filters and boosts that need the catalog, resolved for its candidates."""

    keeps: Callable[[str], bool]  # the attribute filters
    lift: Callable[[str, bool], float]  # (SKU, in stock) → the boost it earns

    def boosted(self, candidates: Candidates, in_stock: Callable[[str], bool]) -> Candidates:
        """The row re-ranked by score plus boost (stable: ties keep the model's order)."""
        lifted = [
            (sku, score + self.lift(sku, in_stock(sku)), curated, row)
            for sku, score, curated, row in candidates.items
        ]
        lifted.sort(key=lambda item: -item[1])
        return Candidates(candidates.category, lifted)


def refinement(
    filters: MatchFilters,
    skus: Iterable[str],
    facts: Mapping[str, ProductFacts | None] | None = None,
) -> Refinement:
    """The filters' and boosts' verdicts on `skus` (a query only if they need the catalog and
    their `facts` were not read already)."""
    if facts is None:
        facts = product_facts(skus) if filters.reads_catalog else {}
    weight = settings.OUTFITS_MATCH_BOOST
    recent = timezone.now() - timedelta(days=settings.OUTFITS_NEW_ARRIVAL_DAYS)
    wanted, boosts = filters.attributes, filters.boosts

    def keeps(sku: str) -> bool:
        return not wanted or has_attributes(facts.get(sku), wanted)

    def earned(boost: Boost, sku: str, in_stock: bool) -> bool:
        if boost.name == IN_STOCK:
            return in_stock
        found = facts.get(sku)
        if found is None:
            return False
        if boost.name == NEW_ARRIVALS:
            return found.created_at >= recent
        return found.attributes.get(boost.name) == boost.value

    def lift(sku: str, in_stock: bool) -> float:
        return weight * sum(earned(boost, sku, in_stock) for boost in boosts)

    return Refinement(keeps, lift)
