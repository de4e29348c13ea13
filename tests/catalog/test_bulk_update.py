"""Product.objects.bulk_update on PostgreSQL is one UPDATE … FROM unnest(arrays) per batch
(catalog.changes.update_from_arrays): it writes exactly what Django's own CASE WHEN version
writes, for every kind of column an import updates, and notes the change for the snapshot."""

from decimal import Decimal

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import changes
from catalog.models import Category, Product

FIELDS = [
    "title",
    "category_id",
    "colour",
    "price",
    "in_stock",
    "attributes",
    "image",
    "image_sha256",
    "active",
    "updated_at",
    "import_line",
]


def make_products(prefix: str, tops: Category) -> list[Product]:
    return [
        Product.objects.create(
            sku=f"{prefix}{n}",
            title=f"Top {n}",
            category=tops,
            price=Decimal("10.00"),
            colour="Red",
        )
        for n in range(7)
    ]


def edit(products: list[Product], shoes: Category, now) -> None:
    for n, product in enumerate(products):
        product.title = f"Shoe «{n}» 'quoted', {{braces}}"
        product.category_id = shoes.pk
        product.colour = "" if n % 2 else "Navy"
        product.price = None if n == 3 else Decimal(f"{n}.5")
        product.in_stock = bool(n % 2)
        product.attributes = {"fabric": "linen", "sizes": [n, "M"], "note": None, "ü": "ß"}
        product.image = f"products/{n}.jpg"
        product.image_sha256 = "ab" * 32
        product.active = n != 5
        product.updated_at = now
        product.import_line = n + 2


def rows(products: list[Product]) -> list[tuple]:
    pks = [p.pk for p in products]
    return [
        tuple(value for name, value in row.items() if name not in ("id", "sku"))
        for row in Product.objects.filter(pk__in=pks).order_by("pk").values(*FIELDS)
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL statement")
def test_it_writes_what_djangos_bulk_update_writes(db, monkeypatch):
    monkeypatch.setattr(changes, "UPDATE_BATCH_ROWS", 3)  # several batches
    tops, shoes = Category.objects.create(name="Tops"), Category.objects.create(name="Shoes")
    ours, djangos = make_products("A", tops), make_products("B", tops)
    now = timezone.now()
    edit(ours, shoes, now)
    edit(djangos, shoes, now)
    before = changes.current_generation()
    with CaptureQueriesContext(connection) as queries:
        assert Product.objects.bulk_update(ours, FIELDS) == 7
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len([sql for sql in updates if "unnest(" in sql]) == 3  # batches of 3: 3, 3, 1
    assert changes.current_generation() != before  # the serving snapshot hears of it
    models.QuerySet.bulk_update(Product.objects.all(), djangos, FIELDS)
    assert rows(ours) == rows(djangos)
    assert Product.objects.get(sku="A3").price is None
    assert Product.objects.get(sku="A1").attributes["sizes"] == [1, "M"]
    assert not Product.objects.get(sku="A5").active
