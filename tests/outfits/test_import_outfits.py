from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from catalog.models import Category, Product
from outfits.models import Outfit
from outfits.services import import_outfits


@pytest.fixture
def products(db) -> list[Product]:
    category = Category.objects.create(name="Tops")
    return [
        Product.objects.create(
            sku=sku, title=sku, category=category, image=ContentFile(b"x", name=f"{sku}.jpg")
        )
        for sku in ("P1", "P2", "P3")
    ]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outfits.csv"
    path.write_text(text)
    return path


def skus(outfit_id: str) -> list[str]:
    outfit = Outfit.objects.get(external_id=outfit_id)
    return [item.product.sku for item in outfit.items.order_by("position")]


def test_outfits_import_and_unknown_skus_are_rejected_by_line(products, tmp_path):
    report = import_outfits(
        write(tmp_path, "outfit_id,sku\n1,P1\n1,P2\n1,NOPE\n2,P3\n2,P1\n2,P3\n")
    )
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [(r.line, r.column, r.value) for r in report.rejected] == [
        (4, "sku", "NOPE"),
        (7, "sku", "P3"),
    ]
    assert skus("1") == ["P1", "P2"] and skus("2") == ["P3", "P1"]


def test_reimport_is_unchanged_and_a_changed_outfit_is_replaced_whole(products, tmp_path):
    import_outfits(write(tmp_path, "outfit_id,sku\n1,P1\n1,P2\n"))
    assert import_outfits(write(tmp_path, "outfit_id,sku\n1,P1\n1,P2\n")).unchanged == 1
    report = import_outfits(write(tmp_path, "outfit_id,sku,position\n1,P3,0\n1,P1,1\n"))
    assert report.updated == 1
    assert skus("1") == ["P3", "P1"]
    assert Outfit.objects.count() == 1
