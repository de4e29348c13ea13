"""Outfit import and the recommendation service behind "Goes well with" pages and the API."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from catalog.csv_import import ImportReport, read_csv_rows
from catalog.models import Category, Product
from embeddings.services import active_compatibility_index

from .models import Outfit, OutfitItem

logger = logging.getLogger(__name__)


def import_outfits(csv_path: Path, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import `outfit_id,sku[,position]` rows. A row with an unknown SKU is rejected; each outfit
    is replaced as a whole, atomically, by its rows in this file."""
    report = ImportReport()
    outfits: dict[str, list[tuple[int, int, int]]] = {}  # id -> (position, product pk, line)
    product_ids = dict(Product.objects.values_list("sku", "pk"))
    for line, row in read_csv_rows(csv_path, ("outfit_id", "sku")):
        outfit_id, sku = row["outfit_id"], row["sku"]
        items = outfits.setdefault(outfit_id, []) if outfit_id else None
        if items is None:
            report.reject(line, "outfit_id", outfit_id, "required")
        elif sku not in product_ids:
            report.reject(line, "sku", sku, "unknown SKU: import the catalog first")
        elif any(pk == product_ids[sku] for _, pk, _ in items):
            report.reject(line, "sku", sku, f"already in outfit {outfit_id}")
        elif row.get("position", "") and not row["position"].isdigit():
            report.reject(line, "position", row["position"], "expected a whole number")
        else:
            position = int(row.get("position") or len(items))
            items.append((position, product_ids[sku], line))
        if progress:
            progress(line)
    for outfit_id, items in outfits.items():
        if items:
            outcome = _replace_outfit(outfit_id, sorted(items))
            setattr(report, outcome, getattr(report, outcome) + 1)
    logger.info("outfit import of %s: %s", csv_path.name, report.summary())
    return report


def _replace_outfit(outfit_id: str, items: list[tuple[int, int, int]]) -> str:
    wanted = [(position, product_pk) for position, product_pk, _ in items]
    with transaction.atomic():
        outfit, created = Outfit.objects.get_or_create(external_id=outfit_id)
        current = list(
            outfit.items.order_by("position", "pk").values_list("position", "product_id")
        )
        if current == wanted:
            return "unchanged"
        outfit.items.all().delete()
        OutfitItem.objects.bulk_create(
            OutfitItem(outfit=outfit, product_id=product_pk, position=position)
            for position, product_pk in wanted
        )
    return "created" if created else "updated"


@dataclass(frozen=True)
class Match:
    product: Product
    score: float


@dataclass(frozen=True)
class CategoryMatches:
    category: Category
    matches: list[Match]


@dataclass(frozen=True)
class GoesWellWith:
    model_version: str | None  # None: no model has been trained yet
    in_model: bool  # False: the product arrived after the active model was trained
    groups: list[CategoryMatches]


def goes_well_with(product: Product, per_category: int | None = None) -> GoesWellWith:
    """The best matches for `product` from each complementary category, best category first:
    active, in-stock products only, never the product itself or its own category."""
    per_category = per_category or settings.OUTFITS_MATCHES_PER_CATEGORY
    active = active_compatibility_index()
    if active is None:
        return GoesWellWith(None, False, [])
    version, index = active
    if product.sku not in index.row_of_sku:
        return GoesWellWith(version.name, False, [])
    # Over-fetch: some candidates may have gone out of stock since the model was trained.
    candidates = {
        category: index.nearest(product.sku, category, per_category * 3 + 5)
        for category in index.complements_of(product.category.name)
        if category != product.category.name
    }
    skus = {sku for found in candidates.values() for sku, _ in found}
    available = {
        p.sku: p
        for p in Product.objects.filter(sku__in=skus, active=True, in_stock=True)
        .exclude(pk=product.pk)
        .select_related("category")
    }
    groups = []
    for category, found in candidates.items():
        matches = [
            Match(available[sku], score)
            for sku, score in found
            if sku in available and available[sku].category.name == category
        ]
        if matches:
            groups.append(CategoryMatches(matches[0].product.category, matches[:per_category]))
    return GoesWellWith(version.name, True, groups)
