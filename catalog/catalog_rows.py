"""Catalog import: rows become products, upserted by SKU in bulk per chunk. A bad row is
reported with its line, column, value and reason, and never stops the others."""

import logging
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from urllib.parse import unquote

from django.urls import NoReverseMatch, Resolver404, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from django.utils.text import slugify

from .csv_import import ColumnMap, ImportReport
from .image_sources import ImageRejected, ImageSources, check_image, store_image
from .import_jobs import Row
from .models import Category, ImportJob, Product

logger = logging.getLogger(__name__)

TRUE_WORDS = {"1", "true", "yes", "y", "t", "in stock"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "out of stock"}
COMPARED_FIELDS = (
    "title",
    "title_made_up",
    "category_id",
    "colour",
    "style",
    "price",
    "in_stock",
    "attributes",
    "image",
    "thumbnail",
    "image_sha256",
    "image_source",
    "active",
)


class RowError(ValueError):
    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.value, self.reason = field, value, reason


def parse_price(value: str) -> Decimal | None:
    if value == "":
        return None
    try:
        price = Decimal(
            value.replace(",", ".") if value.count(",") == 1 and "." not in value else value
        )
    except InvalidOperation:
        raise RowError("price", value, "not a number") from None
    if not price.is_finite() or price < 0:
        raise RowError("price", value, "must be a non-negative number")
    if price >= Decimal("1e8"):
        raise RowError("price", value, "too large")
    return price.quantize(Decimal("0.01"))


def parse_in_stock(value: str) -> bool:
    word = value.lower()
    if word == "" or word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RowError("in_stock", value, "expected true/false, yes/no or 1/0")


SKU_MAX_LENGTH = Product._meta.get_field("sku").max_length


@cache
def sku_routes(resolver: URLResolver) -> tuple[str, ...]:
    """The names (with namespaces) of every URL route that carries a SKU: the shop's pages and
    the API's, wherever they are declared."""
    names: list[str] = []

    def walk(patterns: list, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif pattern.name and "sku" in getattr(pattern.pattern, "converters", {}):
                names.append(namespace + pattern.name)

    walk(resolver.url_patterns, "")
    return tuple(names)


def sku_address_problem(sku: str) -> str | None:
    """Why some web address of this SKU would open another page (or none), or None: every
    route carrying a SKU must lead back to the same route with the same SKU."""
    for name in sku_routes(get_resolver()):
        try:
            url = reverse(name, kwargs={"sku": sku})
            match = resolve(unquote(url))  # what a server hands Django: the decoded path
        except (NoReverseMatch, Resolver404):
            return f"has no web address for {name}"
        if match.view_name != name or match.kwargs.get("sku") != sku:
            return f"its web address {url} is the address of another page"
    return None


def sku_problem(sku: str) -> str | None:
    """Why `sku` cannot be a product's SKU, or None. A SKU names the product in its page's and
    the API's addresses, so it must survive a trip through a URL path: browsers, proxies and
    HTTP clients drop or merge empty and dot segments and trim spaces."""
    if not sku:
        return "required"
    if len(sku) > SKU_MAX_LENGTH:
        return f"longer than {SKU_MAX_LENGTH} characters"
    if sku != sku.strip():
        return "starts or ends with a space"
    for character in sku:
        if unicodedata.category(character) in ("Cc", "Cs"):
            return f"contains the control character U+{ord(character):04X}"
    segments = sku.split("/")
    if "" in segments:
        return "has an empty segment (a '/' at the start or end, or '//'), which web addresses lose"
    if "." in segments or ".." in segments:
        return "has a '.' or '..' segment between '/', which web addresses resolve away"
    # Only a SKU with "/" can reach into another route's suffix (X/look); checking every SKU
    # would cost 0.2 ms a row.
    if len(segments) > 1:
        return sku_address_problem(sku)
    return None


def default_title(colour: str, category: str) -> str:
    """Exports without a title column still give shoppers something to read."""
    return f"{colour} {category}".strip().capitalize()


class CatalogRowImporter:
    known_fields = (
        "sku",
        "title",
        "category",
        "group",
        "colour",
        "style",
        "price",
        "in_stock",
        "image",
    )
    required_fields = ("sku", "category")
    resumable = True

    def __init__(self, job: ImportJob, columns: ColumnMap, sources: ImageSources) -> None:
        self.job = job
        self.columns = columns
        self.sources = sources
        self.categories = {category.name: category for category in Category.objects.all()}
        # A name differing only by case is the same category ("TOPS" is "Tops"): the first one
        # made keeps its name. Slugs are unique too: distinct names slugify alike ("T-shirts",
        # "T shirts"; "Юбки" and "Шубы" are both "category") and get a numbered one.
        self.categories_by_folded_name: dict[str, Category] = {}
        for category in sorted(self.categories.values(), key=lambda c: c.pk):
            self.categories_by_folded_name.setdefault(category.name.casefold(), category)
        self.category_slugs = {category.slug for category in self.categories.values()}
        self.dry_run_lines: dict[str, int] = {}  # a dry run writes no import_line to check

    def column(self, field: str) -> str:
        return self.columns.field_columns.get(field, field)

    def apply(self, rows: list[Row], report: ImportReport) -> None:
        parsed: dict[str, tuple[int, dict[str, Any]]] = {}
        for line, row in rows:
            try:
                sku, fields = self._parse(row)
                if sku in parsed:
                    raise RowError("sku", sku, f"duplicate of line {parsed[sku][0]}")
                parsed[sku] = (line, fields)
            except RowError as error:
                report.reject(line, self.column(error.field), error.value, error.reason)
        existing = {p.sku: p for p in Product.objects.filter(sku__in=list(parsed))}
        creating, updating, unchanged = [], [], []
        for sku, (line, fields) in parsed.items():
            product = existing.get(sku)
            try:
                self._check_not_seen(sku, product)
                fields["category_id"] = self._category(
                    fields.pop("category"), fields.pop("group")
                ).pk
                self._resolve_image(fields, product)
            except RowError as error:
                report.reject(line, self.column(error.field), error.value, error.reason)
                continue
            if self.job.dry_run:
                self.dry_run_lines[sku] = line
            if product is None:
                creating.append(Product(sku=sku, import_job=self.job, import_line=line, **fields))
                continue
            changed = [
                name
                for name in COMPARED_FIELDS
                if name in fields and getattr(product, name) != fields[name]
            ]
            for name in changed:
                setattr(product, name, fields[name])
            product.import_job, product.import_line = self.job, line
            (updating if changed else unchanged).append(product)
        report.created += len(creating)
        report.updated += len(updating)
        report.unchanged += len(unchanged)
        if self.job.dry_run:
            return
        now = timezone.now()
        for product in creating:
            product.created_at = product.updated_at = now
        Product.objects.bulk_create(creating)
        for product in updating:
            product.updated_at = now
        Product.objects.bulk_update(
            updating, [*COMPARED_FIELDS, "updated_at", "import_job", "import_line"]
        )
        Product.objects.bulk_update(unchanged, ["import_job", "import_line"])

    def finish(self, report: ImportReport) -> None:
        if not self.job.deactivate_missing:
            return
        missing = Product.objects.filter(active=True)
        if self.job.dry_run:
            report.deactivated = missing.exclude(sku__in=list(self.dry_run_lines)).count()
        else:
            report.deactivated = missing.exclude(import_job=self.job).update(
                active=False, updated_at=timezone.now()
            )

    def _parse(self, row: dict[str, str]) -> tuple[str, dict[str, Any]]:
        values = self.columns.fields(row)
        sku = values.get("sku", "")
        if problem := sku_problem(sku):
            raise RowError("sku", sku, problem)
        category = values.get("category", "")
        if not category:
            raise RowError("category", "", "required")
        colour = values.get("colour", "")
        # A file without a style column leaves the styles staff or an earlier file gave.
        style = {"style": values["style"][:64]} if "style" in values else {}
        return sku, style | {
            "title": (values.get("title") or default_title(colour, category))[:300],
            "title_made_up": not values.get("title"),
            "category": category[:120],
            "group": values.get("group", "")[:120],
            "colour": colour[:80],
            "price": parse_price(values.get("price", "")),
            "in_stock": parse_in_stock(values.get("in_stock", "")),
            "image_reference": values.get("image", ""),
            "attributes": self.columns.extras(row),
            "active": True,
        }

    def _check_not_seen(self, sku: str, product: Product | None) -> None:
        """A SKU twice in one file: the first row wins, later ones are reported."""
        if self.job.dry_run:
            first_line = self.dry_run_lines.get(sku)
        elif product is not None and product.import_job_id == self.job.pk:
            first_line = product.import_line
        else:
            first_line = None
        if first_line is not None:
            raise RowError("sku", sku, f"duplicate of line {first_line}")

    def _category(self, name: str, group: str) -> Category:
        category = self.categories.get(name) or self.categories_by_folded_name.get(name.casefold())
        if category is None:
            if not self.job.create_categories:
                raise RowError(
                    "category", name, "unknown category (this upload may not create categories)"
                )
            category = Category(name=name, slug=self._free_slug(name), group=group)
            if not self.job.dry_run:
                category.save()
            self.categories_by_folded_name[name.casefold()] = category
            self.category_slugs.add(category.slug)
            self.categories[name] = category
        elif group and category.group != group and not self.job.dry_run:
            category.group = group
            category.save(update_fields=["group"])
        return category

    def _free_slug(self, name: str) -> str:
        """slugify(name) as Category.save() makes it, numbered if another category has it."""
        base = slugify(name)[:130] or "category"
        slug, number = base, 1
        while slug in self.category_slugs or Category.objects.filter(slug=slug).exists():
            number += 1
            slug = f"{base}-{number}"
        return slug

    def _resolve_image(self, fields: dict[str, Any], product: Product | None) -> None:
        reference = fields.pop("image_reference")
        if not reference:
            return  # no image given: keep what the product has
        is_url = reference.lower().startswith(("http://", "https://"))
        if is_url and product is not None and product.image_source == reference and product.image:
            return  # the same URL as last time: not fetched again
        try:
            data = self.sources.read(reference)
            if self.job.dry_run:
                check_image(data)
                return
            stored = store_image(data)
        except ImageRejected as error:
            raise RowError("image", reference, str(error)) from None
        fields.update(
            image=stored.name,
            thumbnail=stored.thumbnail_name,
            image_sha256=stored.sha256,
            image_source=reference,
        )
