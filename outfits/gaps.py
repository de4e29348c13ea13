"""The assortment-gap report: where the catalog has nothing good to offer beside a product.
For every active product the model knows and each complementary category: the best match a
shopper can be shown today (active, in stock, not blocked), and why it falls short: weak (below
the threshold), its strong matches out of stock, or none of its best in stock; categories whose
complements are thin; products the model does not know yet (new arrivals, mostly)."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from catalog.csv_import import spreadsheet_safe
from catalog.models import Product
from embeddings.engine.gaps import best_shown

from .exports import take
from .recommendations import active_model
from .serving import ProductCard, current_snapshot

WEAK = "weak"
OUT_OF_STOCK = "strong matches out of stock"
NONE_IN_STOCK = "none of its best in stock"
NOT_IN_MODEL = "not in the model yet"
# Without a threshold given, the weakest tenth of today's best matches is called weak.
AUTO_QUANTILE = 0.10


@dataclass(frozen=True)
class Gap:
    product: ProductCard
    category: str  # the complementary category that falls short
    reason: str
    best: ProductCard | None  # the best match that may be shown, if any
    best_score: float | None
    top_score: float | None  # the best match's score, shown or not
    new_arrival: bool


@dataclass(frozen=True)
class Coverage:
    """A (category, complementary category) pair: how often its products' best match there
    falls short, and how many products of the complement may be shown at all."""

    category: str
    complement: str
    products: int
    short: int
    complement_shown: int

    @property
    def short_share(self) -> float:
        return self.short / self.products if self.products else 0.0


@dataclass(frozen=True)
class GapReport:
    model_version: str | None
    threshold: float | None
    threshold_is_auto: bool
    products_checked: int
    gaps: list[Gap]  # weakest first
    coverage: list[Coverage]  # the thinnest first

    @property
    def products_short(self) -> int:
        """How many products the gaps are of (a product may fall short in several categories)."""
        return len({gap.product.sku for gap in self.gaps})


def assortment_gaps(threshold: float | None = None, category: str | None = None) -> GapReport:
    """The report for the active version (of `category`'s products only, if given); the
    threshold by default is the AUTO_QUANTILE of all best matches that may be shown."""
    serving = current_snapshot()
    active = active_model(serving)
    recent = timezone.now() - timedelta(days=settings.OUTFITS_NEW_ARRIVAL_DAYS)
    new_arrivals = set(
        Product.objects.filter(active=True, created_at__gte=recent).values_list("sku", flat=True)
    )
    if active is None:
        return GapReport(None, threshold, threshold is None, 0, [], [])
    version, index = active
    products, blocked = serving.products, serving.rules.blocked
    cards = [products.get(sku) for sku in index.skus]
    shown = np.fromiter(
        (c is not None and c.in_stock and c.sku not in blocked for c in cards),
        dtype=bool,
        count=len(cards),
    )
    found = [b for b in best_shown(index, shown) if category in (None, b.category)]
    if threshold is None:
        scores = [b.best_score[np.isfinite(b.best_score)] for b in found]
        every = np.concatenate(scores) if scores else np.empty(0)
        threshold = float(np.quantile(every, AUTO_QUANTILE)) if len(every) else None
        auto = True
    else:
        auto = False
    gaps: list[Gap] = []
    coverage: list[Coverage] = []
    checked: set[int] = set()
    alive = np.fromiter((c is not None for c in cards), dtype=bool, count=len(cards))
    for best in found:
        anchors = best.anchors
        below = best.best_score < threshold if threshold is not None else False
        short = alive[anchors] & ((best.best_row < 0) | below)
        checked.update(anchors[alive[anchors]].tolist())
        for i in np.flatnonzero(short).tolist():
            card, row = cards[anchors[i]], int(best.best_row[i])
            best_score, top_score = float(best.best_score[i]), float(best.top_score[i])
            if row < 0:
                reason = NONE_IN_STOCK
            else:
                reason = OUT_OF_STOCK if threshold is not None and top_score >= threshold else WEAK
            assert card is not None  # alive
            gaps.append(
                Gap(
                    card,
                    best.other,
                    reason,
                    cards[row] if row >= 0 else None,
                    best_score if np.isfinite(best_score) else None,
                    top_score if np.isfinite(top_score) else None,
                    card.sku in new_arrivals,
                )
            )
        coverage.append(
            Coverage(
                best.category,
                best.other,
                int(alive[anchors].sum()),
                int(short.sum()),
                int(shown[index.rows_of_category[best.other]].sum()),
            )
        )
    unknown = [
        card
        for sku, card in sorted(products.items())
        if not index.knows(sku) and category in (None, card.category.name)
    ]
    gaps.sort(key=lambda g: (g.best_score is not None, g.best_score or 0.0, g.product.sku))
    gaps[:0] = [
        Gap(card, "", NOT_IN_MODEL, None, None, None, card.sku in new_arrivals) for card in unknown
    ]
    coverage.sort(key=lambda c: (-c.short_share, c.complement_shown, c.category, c.complement))
    return GapReport(version.name, threshold, auto, len(checked), gaps, coverage)


CSV_COLUMNS = [
    "sku",
    "title",
    "category",
    "complementary_category",
    "reason",
    "best_match_sku",
    "best_match_score",
    "best_score_were_all_in_stock",
    "new_arrival",
    "product_url",
    "admin_url",
]


def gap_csv_lines(report: GapReport, base_url: str = "") -> Iterator[str]:
    """The report's gaps as CSV, a line at a time (cells a spreadsheet cannot run)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    yield take(buffer)
    for gap in report.gaps:
        product = gap.product
        writer.writerow(
            [
                spreadsheet_safe(product.sku),
                spreadsheet_safe(product.title),
                spreadsheet_safe(product.category.name),
                spreadsheet_safe(gap.category),
                gap.reason,
                spreadsheet_safe(gap.best.sku) if gap.best else "",
                "" if gap.best_score is None else round(gap.best_score, 4),
                "" if gap.top_score is None else round(gap.top_score, 4),
                "true" if gap.new_arrival else "false",
                base_url + product.get_absolute_url(),
                base_url + reverse("admin:catalog_product_change", args=[product.pk]),
            ]
        )
        yield take(buffer)
