"""Every active product's matches outside the site (email campaigns, ads feeds, storefront
back-ends): CSV or JSON Lines, streamed a product at a time, so memory stays flat however large
the catalog. The same matches, filters and rec_ids as the product pages' and the API's: an
event that comes back from a campaign is attributed to the version that answered."""

import bisect
import csv
import io
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from catalog.csv_import import spreadsheet_safe

from .match_filters import NO_FILTERS, MatchFilters, remembered_facts
from .recommendations import GoesWellWith, goes_well_with_each
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


def active_skus(after: str = "", count: int | None = None) -> list[str]:
    """The active products' SKUs after `after` (at most `count`), in order: the export's
    order and the API's cursor."""
    ordered = current_snapshot().sorted_skus
    start = bisect.bisect_right(ordered, after) if after else 0
    return ordered[start : None if count is None else start + count]


PRODUCTS_TOGETHER = 100  # worked out together by goes_well_with_each()


def matches_of_products(
    skus: Sequence[str], limit: int | None = None, filters: MatchFilters = NO_FILTERS
) -> Iterator[ProductMatches]:
    """Each active product's matches (goes_well_with), in the given order, worked out
    PRODUCTS_TOGETHER at a time; products gone since the list was made are skipped."""
    serving = current_snapshot()
    for start in range(0, len(skus), PRODUCTS_TOGETHER):
        cards = [
            c for sku in skus[start : start + PRODUCTS_TOGETHER] if (c := serving.product(sku))
        ]
        for card, found in zip(cards, goes_well_with_each(cards, limit, filters), strict=True):
            yield ProductMatches(card.sku, found)


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


# --- Export files: written by a worker (outfits.tasks), listed and downloaded by staff --------

EXPORT_NAME = re.compile(r"^matches-\d{8}-\d{6}-[0-9a-f]{6}\.(csv|jsonl)$")
PROGRESS_EVERY_SECONDS = 2.0
# An export no worker has started in this long never will be (the broker's visibility
# timeout, settings.CELERY_BROKER_TRANSPORT_OPTIONS): its marker is no longer listed.
QUEUED_AT_MOST_SECONDS = 7 * 3600


def exports_folder() -> Path:
    """Where export files are kept: private (not under the media served to everyone)."""
    folder = Path(settings.VAR_DIR) / "private" / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_export_name(file_format: str) -> str:
    if file_format not in FORMATS:
        raise ValueError(f"unknown export format {file_format!r}: use {' or '.join(FORMATS)}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"matches-{stamp}-{secrets.token_hex(3)}.{file_format}"


def mark_queued(name: str, queued: bool = True) -> None:
    """Note (or, with `queued` False, forget) that the export `name` waits for a worker, so
    the exports page lists it, and reloads itself, before a worker has started it."""
    if not EXPORT_NAME.match(name):
        raise ValueError(f"{name!r} is not an export file name")
    marker = exports_folder() / f"{name}.queued"
    if queued:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def write_export_file(
    name: str, limit: int | None, filters: MatchFilters, base_url: str = ""
) -> Path:
    """Write the export `name` (new_export_name) whole: into `<name>.part`, its progress in
    `<name>.progress` every few seconds, then renamed into place (a failed export leaves no
    file that looks whole). The queued marker goes once the part file is there (and, should
    the export fail, with the task: outfits.tasks)."""
    if not EXPORT_NAME.match(name):
        raise ValueError(f"{name!r} is not an export file name")
    folder = exports_folder()
    part, progress_file = folder / f"{name}.part", folder / f"{name}.progress"
    queued = folder / f"{name}.queued"
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_SECONDS or done == total:
            last[0] = now
            progress_file.write_text(json.dumps({"done": done, "total": total}))

    file_format = name.rsplit(".", 1)[1]
    try:
        with part.open("w", encoding="utf-8", newline="") as handle:
            queued.unlink(missing_ok=True)
            handle.writelines(export_lines(file_format, limit, filters, base_url, progress))
        os.replace(part, folder / name)
    finally:
        part.unlink(missing_ok=True)
        progress_file.unlink(missing_ok=True)
    return folder / name


@dataclass(frozen=True)
class ExportFile:
    name: str
    size: int  # bytes
    modified: datetime
    ready: bool  # False: still being written, or waiting for a worker
    done: int = 0  # products written so far (while being written)
    total: int = 0
    queued: bool = False  # no worker has started it yet

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def export_files() -> list[ExportFile]:
    """The exports written, being written and waiting for a worker, newest first. Read from
    one listing of the folder: a file renamed or removed since (a worker moving on) is listed
    as not ready yet, so the page reloads and finds it where it went."""
    entries = list(exports_folder().iterdir())
    names = {path.name for path in entries}
    found: dict[str, ExportFile] = {}
    for path in entries:
        kind = next((end for end in (".part", ".queued") if path.name.endswith(end)), "")
        name = path.name.removesuffix(kind)
        if not EXPORT_NAME.match(name) or name in found and found[name].ready:
            continue
        if kind == ".queued" and (name in names or f"{name}.part" in names):
            continue  # started: listed by its part file or its file
        try:
            stat = path.stat()
        except FileNotFoundError:
            found[name] = ExportFile(name, 0, datetime.now(UTC), ready=False)
            continue
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        if kind == ".queued":
            if time.time() - stat.st_mtime < QUEUED_AT_MOST_SECONDS:
                found[name] = ExportFile(name, 0, modified, ready=False, queued=True)
            continue
        done = total = 0
        if kind == ".part":
            try:
                counts = json.loads((path.parent / f"{name}.progress").read_text())
                done, total = int(counts["done"]), int(counts["total"])
            except (OSError, ValueError, KeyError):
                pass  # not started yet, or between two writes
        found[name] = ExportFile(name, stat.st_size, modified, kind == "", done, total)
    return sorted(found.values(), key=lambda f: f.name, reverse=True)


def export_path(name: str) -> Path | None:
    """The finished export with this name, if any (names are checked: no path reaches out)."""
    if not EXPORT_NAME.match(name):
        return None
    path = exports_folder() / name
    return path if path.is_file() else None
