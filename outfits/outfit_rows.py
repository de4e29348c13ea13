"""Outfit import: merchandisers' outfit CSVs, the training labels of the model."""

import logging

from django.db import transaction

from catalog.csv_import import ColumnMap, ImportReport
from catalog.import_jobs import Row
from catalog.models import ImportJob, Product

from .models import Outfit, OutfitItem

logger = logging.getLogger(__name__)


class OutfitRowImporter:
    """`outfit_id,sku[,position]` rows. Rows are collected per outfit (an outfit's rows need not
    be adjacent); at the end each outfit is replaced as a whole, atomically, by its valid rows.
    A row with an unknown SKU is rejected; the rest of its outfit still imports."""

    known_fields = ("outfit_id", "sku", "position")
    required_fields = ("outfit_id", "sku")
    resumable = False
    OUTFITS_PER_TRANSACTION = 200

    def __init__(self, job: ImportJob, columns: ColumnMap, sources: object = None) -> None:
        # `sources` (images) is part of the importer interface; outfits have no images.
        self.job = job
        self.columns = columns
        self.outfits: dict[str, list[tuple[int, int, int]]] = {}  # id -> (position, pk, line)

    def column(self, field: str) -> str:
        return self.columns.field_columns.get(field, field)

    def apply(self, rows: list[Row], report: ImportReport) -> None:
        values = [(line, self.columns.fields(row)) for line, row in rows]
        product_ids = dict(
            Product.objects.filter(
                sku__in={v.get("sku", "") for _, v in values}, active=True
            ).values_list("sku", "pk")
        )
        for line, row in values:
            outfit_id, sku, position = row["outfit_id"], row["sku"], row.get("position", "")
            if not outfit_id:
                report.reject(line, self.column("outfit_id"), "", "required")
            elif sku not in product_ids:
                report.reject(
                    line,
                    self.column("sku"),
                    sku,
                    "unknown SKU (or an inactive product): import the catalog first",
                )
            elif position and not position.isdigit():
                report.reject(line, self.column("position"), position, "expected a whole number")
            else:
                items = self.outfits.setdefault(outfit_id[:64], [])
                if any(pk == product_ids[sku] for _, pk, _ in items):
                    report.reject(line, self.column("sku"), sku, f"already in outfit {outfit_id}")
                else:
                    items.append((int(position or len(items)), product_ids[sku], line))

    def finish(self, report: ImportReport) -> None:
        batch: list[tuple[str, list[tuple[int, int, int]]]] = []
        for outfit_id, items in self.outfits.items():
            batch.append((outfit_id, sorted(items)))
            if len(batch) >= self.OUTFITS_PER_TRANSACTION:
                self._replace(batch, report)
                batch = []
        self._replace(batch, report)

    def _replace(self, batch: list[tuple[str, list[tuple[int, int, int]]]], report) -> None:
        if not batch:
            return
        with transaction.atomic():
            existing = {
                o.external_id: o
                for o in Outfit.objects.filter(external_id__in=[i for i, _ in batch])
            }
            current: dict[int, list[tuple[int, int]]] = {}
            for outfit_pk, position, product_pk in (
                OutfitItem.objects.filter(outfit__in=existing.values())
                .order_by("position", "pk")
                .values_list("outfit_id", "position", "product_id")
            ):
                current.setdefault(outfit_pk, []).append((position, product_pk))
            for outfit_id, items in batch:
                wanted = [(position, product_pk) for position, product_pk, _ in items]
                outfit = existing.get(outfit_id)
                if outfit is not None and current.get(outfit.pk, []) == wanted:
                    report.unchanged += 1
                    continue
                if self.job.dry_run:
                    report.created += outfit is None
                    report.updated += outfit is not None
                    continue
                if outfit is None:
                    outfit = Outfit.objects.create(external_id=outfit_id)
                    report.created += 1
                else:
                    outfit.items.all().delete()
                    report.updated += 1
                OutfitItem.objects.bulk_create(
                    OutfitItem(outfit=outfit, product_id=product_pk, position=position)
                    for position, product_pk in wanted
                )
