"""Every active product's matches outside the site (email campaigns, ads feeds, storefront
back-ends): CSV or JSON Lines, streamed a product at a time, so memory stays flat however large
the catalog. The same matches, filters and rec_ids as the product pages' and the API's: an
event that comes back from a campaign is attributed to the version that answered."""

import bisect
import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from catalog.csv_import import spreadsheet_safe

from .match_filters import NO_FILTERS, MatchFilters, remembered_facts
from .recommendations import GoesWellWith, goes_well_with
from .serving import current_snapshot, one_snapshot

FORMATS = ("csv", "jsonl")
CSV_COLUMNS = [
    "sku",
    "category",
    "rank",
    "match_sku",
    "match_title",
    "match_colour",
    "match_price",
    "match_in_stock",
    "match_url",
    "score",
    "why",
    "model_version",
    "rec_id",
]


@dataclass(frozen=True)
class ProductMatches:
    sku: str
    found: GoesWellWith


def active_skus(after: str = "") -> list[str]:
    """The active products' SKUs after `after`, in order: the export's order and the API's
    cursor."""
    ordered = current_snapshot().sorted_skus
    return ordered[bisect.bisect_right(ordered, after) :] if after else ordered


def matches_of_products(
    skus: Sequence[str], limit: int | None = None, filters: MatchFilters = NO_FILTERS
) -> Iterator[ProductMatches]:
    """Each active product's matches (goes_well_with), in the given order; products gone since
    the list was made are skipped."""
    serving = current_snapshot()
    for sku in skus:
        if (card := serving.product(sku)) is not None:
            yield ProductMatches(sku, goes_well_with(card, limit, filters))


def as_record(item: ProductMatches, absolute: Callable[[str], str] = str) -> dict:
    """One product's matches as one JSON object (a JSON Lines line)."""
    found = item.found
    return {
        "sku": item.sku,
        "rec_id": found.rec_id,
        "model_version": found.model_version,
        "in_model": found.in_model,
        "groups": [
            {
                "category": group.category.name,
                "matches": [
                    {
                        "sku": m.product.sku,
                        "title": m.product.title,
                        "colour": m.product.colour,
                        "price": None if m.product.price is None else f"{m.product.price:.2f}",
                        "in_stock": m.product.in_stock,
                        "url": absolute(m.product.get_absolute_url()),
                        "score": None if m.score is None else round(m.score, 4),
                        "why": m.why,
                    }
                    for m in group.matches
                ],
            }
            for group in found.groups
        ],
    }


def export_lines(
    file_format: str,
    limit: int | None = None,
    filters: MatchFilters = NO_FILTERS,
    base_url: str = "",
    on_product: Callable[[int, int], None] | None = None,
) -> Iterator[str]:
    """The export as text, a line at a time: a CSV row per match (after a header), or a JSON
    object per product. `base_url` makes the product URLs absolute; `on_product(done, total)`
    is told of each product (progress)."""
    if file_format not in FORMATS:
        raise ValueError(f"unknown export format {file_format!r}: use {' or '.join(FORMATS)}")
    with one_snapshot(), remembered_facts():
        yield from _export_lines(file_format, limit, filters, base_url, on_product)


def _export_lines(
    file_format: str,
    limit: int | None,
    filters: MatchFilters,
    base_url: str,
    on_product: Callable[[int, int], None] | None,
) -> Iterator[str]:
    skus = active_skus()

    def absolute(path: str) -> str:
        return base_url.rstrip("/") + path if base_url else path

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if file_format == "csv":
        writer.writerow(CSV_COLUMNS)
        yield take(buffer)
    for done, item in enumerate(matches_of_products(skus, limit, filters), start=1):
        record = as_record(item, absolute)
        if file_format == "jsonl":
            yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        else:
            for group in record["groups"]:
                for rank, match in enumerate(group["matches"], start=1):
                    writer.writerow(
                        [
                            spreadsheet_safe(item.sku),
                            spreadsheet_safe(group["category"]),
                            rank,
                            spreadsheet_safe(match["sku"]),
                            spreadsheet_safe(match["title"]),
                            spreadsheet_safe(match["colour"]),
                            match["price"] or "",
                            "true" if match["in_stock"] else "false",
                            match["url"],
                            "" if match["score"] is None else match["score"],
                            match["why"],
                            record["model_version"] or "",
                            record["rec_id"],
                        ]
                    )
            if rows := take(buffer):
                yield rows
        if on_product is not None:
            on_product(done, len(skus))


def take(buffer: io.StringIO) -> str:
    """What the CSV writer wrote since the last call."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
