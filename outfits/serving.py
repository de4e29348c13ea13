"""What a web process answers shoppers and storefronts from: an in-memory snapshot of the
active products, the merchandisers' rules, the API keys and the active model version.

A request reads the change counter (one indexed row, catalog.changes) and, when something
changed, the snapshot reloads just that: the changed products, and the small tables of rules,
keys and versions. A matches answer then needs no other database query, and a change is
honoured on the first request after its commit."""

import gc
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache, cached_property
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS

from catalog.changes import (
    Generation,
    changes_noted_in_this_thread,
    current_generation,
    products_changed_between,
)
from catalog.models import Category, Product
from embeddings.models import ModelVersion

from . import database, metrics
from .models import ApiKey, BlockedPair, BlockedProduct, Experiment, PinnedMatch
from .row_facts import RowFactsCache

logger = logging.getLogger(__name__)

CARD_FIELDS = (
    "pk",
    "sku",
    "title",
    "category_id",
    "colour",
    "price",
    "in_stock",
    "image",
    "thumbnail",
    "updated_at",
    "title_made_up",
    "style",
)


@dataclass(frozen=True, slots=True)
class ProductCard:
    """What an answer shows of an active product; duck-types the Product a template reads."""

    pk: int
    sku: str
    title: str
    category: Category
    colour: str
    price: Decimal | None
    in_stock: bool
    image: str  # storage names
    thumbnail: str
    updated_at: datetime
    title_made_up: bool
    style: str

    def get_absolute_url(self) -> str:
        return product_url(self.sku)

    @property
    def image_url(self) -> str | None:
        return default_storage.url(self.image) if self.image else None

    @property
    def card_image_url(self) -> str | None:
        """The small picture for lists and panels (the full image if no thumbnail yet)."""
        name = self.thumbnail or self.image
        return default_storage.url(name) if name else None


@cache
def product_url_pattern() -> str:
    return reverse("shop:product-detail", args=["SKU"])


URL_SAFE = RFC3986_SUBDELIMS + "/~:@"
# What quote(…, safe=URL_SAFE) leaves as it is: most SKUs, whose quoting (a third of
# serializing a batch's 3,400 matches) can then be skipped.
UNQUOTED = re.compile(r"[A-Za-z0-9_.\-" + re.escape(URL_SAFE) + r"]*")


def product_url(sku: str) -> str:
    """reverse("shop:product-detail") without the resolver's cost on every card, quoted as
    reverse() quotes: a SKU's "/" stays a "/" (an encoded %2F is refused by some proxies)."""
    quoted = sku if UNQUOTED.fullmatch(sku) else quote(sku, safe=URL_SAFE)
    return product_url_pattern().replace("SKU", quoted, 1)


@dataclass(frozen=True)
class Rules:
    """The merchandisers' rules and everything else small, reloaded whole on any change."""

    categories: dict[int, Category]
    blocked: frozenset[str]  # SKUs never shown as a match
    blocked_with: dict[str, frozenset[str]]  # SKU → SKUs never shown with it (both ways)
    pins: dict[str, list[tuple[str, int]]]  # SKU → (pinned SKU, position), by position
    api_keys: dict[str, ApiKey]  # prefix → live key
    active_version: ModelVersion | None
    experiment: Experiment | None = None  # the running A/B test, its versions loaded

    @cached_property
    def category_by_name_or_slug(self) -> dict[str, Category]:
        """By casefolded name and slug: the importer, too, takes TOPS for Tops."""
        return {key.casefold(): c for c in self.categories.values() for key in (c.name, c.slug)}

    @classmethod
    def load(cls) -> "Rules":
        # The rules' product ids, then the SKUs of just those: joined to the products in one
        # query, PostgreSQL hashed the whole catalog for a handful of rules (48 ms at 100k, at
        # every change, in the request that noticed it).
        pairs = list(BlockedPair.objects.values_list("product_id", "other_id"))
        pinned = list(
            PinnedMatch.objects.order_by("position", "pk").values_list(
                "product_id", "match_id", "position"
            )
        )
        blocked = list(BlockedProduct.objects.values_list("product_id", flat=True))
        pinned_ids = (i for product, match, _ in pinned for i in (product, match))
        sku = _skus_of({*blocked, *(i for pair in pairs for i in pair), *pinned_ids})
        blocked_with: dict[str, set[str]] = {}
        for a, b in pairs:
            blocked_with.setdefault(sku[a], set()).add(sku[b])
            blocked_with.setdefault(sku[b], set()).add(sku[a])
        pins: dict[str, list[tuple[str, int]]] = {}
        for product, match, position in pinned:
            pins.setdefault(sku[product], []).append((sku[match], position))
        return cls(
            categories={c.pk: c for c in Category.objects.all()},
            blocked=frozenset(sku[product] for product in blocked),
            blocked_with={sku: frozenset(others) for sku, others in blocked_with.items()},
            pins=pins,
            api_keys={k.prefix: k for k in ApiKey.objects.filter(revoked_at__isnull=True)},
            active_version=ModelVersion.objects.filter(is_active=True).first(),
            experiment=Experiment.objects.filter(status=Experiment.Status.RUNNING)
            .select_related("version_a", "version_b")
            .first(),
        )


RULE_SKUS_A_QUERY = 10_000


def _skus_of(ids: set[int]) -> dict[int, str]:
    """The SKUs of the products with these ids, by primary key (index lookups)."""
    ordered, found = sorted(ids), {}
    for start in range(0, len(ordered), RULE_SKUS_A_QUERY):
        chunk = ordered[start : start + RULE_SKUS_A_QUERY]
        found.update(Product.objects.filter(pk__in=chunk).values_list("pk", "sku"))
    return found


@dataclass(frozen=True)
class ServingSnapshot:
    generation: Generation
    rules: Rules
    products: dict[str, ProductCard] = field(repr=False)  # the active ones, by SKU
    sku_of_id: dict[int, str] = field(repr=False)
    # The products as arrays by a model version's rows, for answers of many products at once.
    row_facts: RowFactsCache = field(default_factory=RowFactsCache, repr=False, compare=False)

    def product(self, sku: str) -> ProductCard | None:
        """The active product with `sku`, or None."""
        return self.products.get(sku)

    @cached_property
    def sorted_skus(self) -> list[str]:
        """The active products' SKUs in order (exports and the API's pages walk them), sorted
        on first use: a worker that never pages never pays for it."""
        return sorted(self.products)


CARD_PAGE = 5_000


def load_cards(
    rules: Rules, ids: set[int] | None = None, gentle: bool = False
) -> list[tuple[int, ProductCard | None]]:
    """(id, card) of the active products (of `ids` only, if given); None for an id that is no
    longer an active product. Read in pages of one query each, so that every read carries the
    web processes' query deadline (a server-side cursor's fetches would not); `gentle`: after
    each page, idle as long as it took, leaving this process's requests half the time."""
    categories = rules.categories
    loaded: list[tuple[int, ProductCard | None]] = []
    pages = _card_rows(ids, CARD_PAGE // 5 if gentle else CARD_PAGE)
    while True:
        started = time.perf_counter()
        if (page := next(pages, None)) is None:
            break
        loaded += [
            (pk, ProductCard(pk, sku, title, categories[category], *rest))
            for pk, sku, title, category, *rest in page
        ]
        if gentle:
            time.sleep(time.perf_counter() - started)
    if ids is not None:
        found = {pk for pk, _ in loaded}
        loaded += [(pk, None) for pk in ids - found]
    return loaded


def _card_rows(ids: set[int] | None, size: int) -> Iterator[list[tuple]]:
    active = Product.objects.filter(active=True).order_by("pk")
    if ids is not None:
        ordered = sorted(ids)
        for start in range(0, len(ordered), size):
            chunk = ordered[start : start + size]
            yield list(active.filter(pk__in=chunk).values_list(*CARD_FIELDS))
        return
    after = 0
    while page := list(active.filter(pk__gt=after).values_list(*CARD_FIELDS)[:size]):
        yield page
        after = page[-1][0]


def build_snapshot(
    previous: ServingSnapshot | None, now: Generation, gentle: bool = False
) -> ServingSnapshot:
    """The snapshot at change `now`: from `previous` plus the products changed since, or from
    scratch when the change log cannot say what changed (`gentle`: see load_cards)."""
    started = time.perf_counter()
    rules = Rules.load()
    changed = products_changed_between(previous.generation, now) if previous else None
    if previous is not None and changed == set():
        # Only rules, keys or the model changed (every activation and refresh): the products
        # are shared, not copied (a snapshot's dicts are never written once built; a 1M
        # catalog's copy held the request that noticed the change for tens of milliseconds).
        products, sku_of_id = previous.products, previous.sku_of_id
    elif previous is not None and changed is not None:
        products, sku_of_id = dict(previous.products), dict(previous.sku_of_id)
    else:
        products, sku_of_id = {}, {}
    changed_skus: list[str] = []
    for pk, card in load_cards(rules, changed, gentle):
        old_sku = sku_of_id.pop(pk, None)
        if old_sku is not None:
            products.pop(old_sku, None)
        if card is not None:
            products[card.sku], sku_of_id[pk] = card, card.sku
        if changed is not None:  # what the row facts patch (a full load makes them anew)
            changed_skus += [sku for sku in (old_sku, card and card.sku) if sku]
    metrics.SNAPSHOT_RELOADS.labels("full" if changed is None else "changes").inc()
    if changed is None and _freezing:
        _out_of_the_collectors_sight()
    if changed is None:
        logger.info(
            "serving snapshot: %d products loaded in %.2f s",
            len(products),
            time.perf_counter() - started,
        )
    same_products = previous is not None and products is previous.products
    if same_products:
        row_facts = previous.row_facts
    elif previous is not None and changed is not None:
        row_facts = RowFactsCache(previous.row_facts, changed_skus)
    else:
        row_facts = RowFactsCache()
    snapshot = ServingSnapshot(now, rules, products, sku_of_id, row_facts)
    if same_products and "sorted_skus" in vars(previous):
        # The same products: their sorted SKUs too (sorting a 1M catalog's takes a second).
        vars(snapshot)["sorted_skus"] = previous.sorted_skus
    return snapshot


# A web worker's snapshot holds a card per product: at 1M products one full pass of Python's
# cyclic garbage collector over them takes about 300 ms (309 ms measured apart), and any
# allocation, a request's too, may set one off. Web workers (warm_up) keep each full
# snapshot out of its sight (gc.freeze): cards hold no cycles, and reference counting still
# frees them when a snapshot is replaced.
_freezing = False


def keep_snapshots_out_of_the_collector() -> None:
    """From now on in this process, and for what it holds already."""
    global _freezing
    _freezing = True
    _out_of_the_collectors_sight()


def _out_of_the_collectors_sight() -> None:
    gc.collect(1)  # the young garbage first: frozen objects are never collected
    gc.freeze()


_snapshot: ServingSnapshot | None = None
_lock = threading.Lock()  # held while a snapshot is built: one build at a time
_builder: threading.Thread | None = None  # the build beside, if one is under way
_builder_lock = threading.Lock()
# Within one request the counter is read once: (the snapshot, this thread's writes then).
_request = threading.local()
# This thread's own writes the snapshot it last got already held (changes_noted_in_this_thread).
_reader = threading.local()


def current_snapshot() -> ServingSnapshot:
    """This process's snapshot, brought up to the latest committed change (checked once per
    request, and again after the request's own writes). While the database is unavailable,
    the snapshot it has (DatabaseUnavailable if none yet), without asking the database: the
    probe of outfits.database retries it in the background, once a second."""
    memo = getattr(_request, "memo", None)
    if memo is not None and memo[1] == changes_noted_in_this_thread():
        return memo[0]
    snapshot = _snapshot
    if database.unavailable():
        if snapshot is None:
            raise database.DatabaseUnavailable("no serving snapshot yet, and no database")
    else:
        try:
            snapshot = _up_to_date(snapshot)
        except database.DATABASE_ERRORS as error:
            database.mark_unavailable(error)
            if snapshot is None:
                raise
    if getattr(_request, "active", False):
        _request.memo = (snapshot, changes_noted_in_this_thread())
    return snapshot


def _up_to_date(snapshot: ServingSnapshot | None) -> ServingSnapshot:
    """The snapshot at the latest change, or, while a large change is loaded beside, the
    previous one whole (never a mix). A request waits for a load only for the first snapshot,
    a small change, or its own thread's writes (read-your-writes)."""
    noted = changes_noted_in_this_thread()
    now = current_generation()
    if snapshot is not None and snapshot.generation == now:
        _reader.noted = noted
        return snapshot
    own_writes = noted != getattr(_reader, "noted", 0)
    if snapshot is not None and not own_writes:
        if _builder is not None and _builder.is_alive():
            return snapshot
        changed = products_changed_between(snapshot.generation, now)
        size = len(snapshot.products) if changed is None else len(changed)
        if size > settings.OUTFITS_SNAPSHOT_INLINE_PRODUCTS:
            _build_beside()
            return snapshot
    snapshot = _build(now)
    _reader.noted = noted
    return snapshot


def _build(now: Generation, gentle: bool = False) -> ServingSnapshot:
    global _snapshot
    with _lock:
        snapshot = _snapshot
        if snapshot is None or snapshot.generation != now:
            snapshot = _snapshot = build_snapshot(snapshot, now, gentle)
    return snapshot


def _build_beside() -> None:
    global _builder
    with _builder_lock:
        if _builder is None or not _builder.is_alive():
            _builder = threading.Thread(target=_build_latest, name="serving-snapshot", daemon=True)
            _builder.start()


def _build_latest() -> None:
    """The build beside: the snapshot at the latest change, swapped in whole when ready."""
    try:
        _build(current_generation(), gentle=True)
    except database.DATABASE_ERRORS as error:
        database.mark_unavailable(error)
    except Exception:
        logger.exception("serving snapshot: the load beside failed; the next request retries")
    finally:
        connection.close()  # this thread's own connection


@contextmanager
def one_snapshot() -> Iterator[ServingSnapshot]:
    """For long work outside a request (an export of the whole catalog): every
    current_snapshot() of this thread meanwhile answers the snapshot of its start, as within a
    request, so the work reads one moment of the catalog and asks the database once."""
    before = getattr(_request, "active", False), getattr(_request, "memo", None)
    _request.active, _request.memo = True, None
    try:
        yield current_snapshot()
    finally:
        _request.active, _request.memo = before


def request_started(**_) -> None:
    _request.active, _request.memo = True, None


def request_finished(**_) -> None:
    _request.active, _request.memo = False, None
