import pytest

from catalog.models import Category, Product
from outfits.models import Outfit


@pytest.fixture
def products(db) -> list[Product]:
    category = Category.objects.create(name="Tops")
    return [
        Product.objects.create(sku=sku, title=sku, category=category) for sku in ("P1", "P2", "P3")
    ]


def skus(outfit_id: str) -> list[str]:
    outfit = Outfit.objects.get(external_id=outfit_id)
    return [item.product.sku for item in outfit.items.order_by("position")]


def test_outfits_import_and_unknown_skus_are_rejected_by_line(products, run_import):
    job = run_import("outfit_id,sku\n1,P1\n1,P2\n1,NOPE\n2,P3\n2,P1\n2,P3\n", kind="outfits")
    assert (job.created, job.updated, job.unchanged, job.rejected) == (2, 0, 0, 2)
    assert [(r.line, r.column, r.value) for r in job.rejections.all()] == [
        (4, "sku", "NOPE"),
        (7, "sku", "P3"),
    ]
    assert skus("1") == ["P1", "P2"] and skus("2") == ["P3", "P1"]


def test_outfit_rows_need_not_be_adjacent_and_positions_are_kept(products, run_import):
    job = run_import(
        "id;item;pos\n9;P3;2\n8;P1;0\n9;P1;0\n8;P2;1\n",
        kind="outfits",
        column_mapping={"outfit_id": "id", "sku": "item", "position": "pos"},
    )
    assert job.status == "succeeded" and job.created == 2
    assert skus("9") == ["P1", "P3"] and skus("8") == ["P1", "P2"]


def test_reimport_is_unchanged_and_a_changed_outfit_is_replaced_whole(products, run_import):
    run_import("outfit_id,sku\n1,P1\n1,P2\n", kind="outfits")
    assert run_import("outfit_id,sku\n1,P1\n1,P2\n", kind="outfits").unchanged == 1
    job = run_import("outfit_id,sku,position\n1,P3,0\n1,P1,1\n", kind="outfits")
    assert job.updated == 1
    assert skus("1") == ["P3", "P1"]
    assert Outfit.objects.count() == 1


def test_outfits_dry_run_counts_without_writing(products, run_import):
    job = run_import("outfit_id,sku\n1,P1\n1,P2\n2,P9\n", kind="outfits", dry_run=True)
    assert (job.created, job.rejected) == (1, 1)
    assert Outfit.objects.count() == 0


def test_inactive_products_cannot_join_outfits(products, run_import):
    Product.objects.filter(sku="P2").update(active=False)
    job = run_import("outfit_id,sku\n1,P1\n1,P2\n", kind="outfits")
    assert "inactive" in job.rejections.get().reason
