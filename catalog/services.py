"""Catalog import: one CSV row per product, upserted by SKU, images verified and stored by
content hash. A bad row is reported with its line number and never stops the others."""

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from .csv_import import ImportReport, read_csv_rows
from .models import Category, Product

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("sku", "title", "category", "image")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "colour", "price", "in_stock")
TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f"}
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: far above any product photo


class RowError(ValueError):
    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


@dataclass(frozen=True)
class StoredImage:
    name: str  # storage name
    sha256: str


def parse_price(value: str) -> Decimal | None:
    if value == "":
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise RowError("price", value, "not a number") from None
    if not price.is_finite() or price < 0:
        raise RowError("price", value, "must be a non-negative number")
    return price.quantize(Decimal("0.01"))


def parse_in_stock(value: str) -> bool:
    word = value.lower()
    if word == "" or word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RowError("in_stock", value, "expected true/false, yes/no or 1/0")


def store_image(path: Path) -> StoredImage:
    """Verify and decode an image, and store it as RGB JPEG named by its content hash, so an
    unchanged image is stored once and recognised on re-import."""
    if not path.is_file():
        raise RowError("image", str(path), "file not found")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    name = f"products/{sha256[:2]}/{sha256}.jpg"
    if default_storage.exists(name):
        return StoredImage(name, sha256)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # catches truncated and corrupt files cheaply
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise RowError("image", str(path), f"not a readable image ({error})") from None
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=92)
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return StoredImage(name, sha256)


def _product_fields(row: dict[str, str], image_root: Path) -> dict[str, Any]:
    for column in ("sku", "title", "category", "image"):
        if not row[column]:
            raise RowError(column, "", "required")
    image_path = Path(row["image"])
    stored = store_image(image_path if image_path.is_absolute() else image_root / image_path)
    return {
        "title": row["title"],
        "category_name": row["category"],
        "colour": row.get("colour", ""),
        "price": parse_price(row.get("price", "")),
        "in_stock": parse_in_stock(row.get("in_stock", "")),
        "image": stored.name,
        "image_sha256": stored.sha256,
        "attributes": {k: v for k, v in row.items() if k not in KNOWN_COLUMNS and v != ""},
        "active": True,
    }


def _upsert_product(sku: str, fields: dict[str, Any]) -> str:
    """Create or update one product atomically; returns created, updated or unchanged."""
    with transaction.atomic():
        category, _ = Category.objects.get_or_create(name=fields.pop("category_name"))
        fields["category"] = category
        product = Product.objects.select_for_update().filter(sku=sku).first()
        if product is None:
            Product.objects.create(sku=sku, **fields)
            return "created"
        changed = [name for name, value in fields.items() if getattr(product, name) != value]
        if not changed:
            return "unchanged"
        for name in changed:
            setattr(product, name, fields[name])
        product.save(update_fields=[*changed, "updated_at"])
        return "updated"


def import_catalog(
    csv_path: Path,
    image_root: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import products from `csv_path` (columns sku,title,category,image[,colour,price,in_stock],
    others kept as attributes). Relative image paths are read from `image_root`, by default the
    CSV's folder."""
    image_root = image_root or csv_path.parent
    report = ImportReport()
    seen_skus: dict[str, int] = {}
    for line, row in read_csv_rows(csv_path, REQUIRED_COLUMNS):
        sku = row["sku"]
        try:
            if sku in seen_skus:
                raise RowError("sku", sku, f"duplicate of line {seen_skus[sku]}")
            outcome = _upsert_product(sku, _product_fields(row, image_root))
        except RowError as error:
            report.reject(line, error.column, error.value, error.reason)
        else:
            seen_skus[sku] = line
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress:
            progress(line)
    logger.info("catalog import of %s: %s", csv_path.name, report.summary())
    return report
