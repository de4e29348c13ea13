"""The assortment-gap report on the hand-made shop, whose scores are known: a product's score
with the top T1 is its vector's first component (S1 0.9, S2 0.5, S3 0.3; B1 0.7, B2 0.6)."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from catalog.models import Category, Product
from outfits.gaps import NONE_IN_STOCK, NOT_IN_MODEL, OUT_OF_STOCK, WEAK, assortment_gaps


def gap_of(report, sku: str, category: str):
    found = [g for g in report.gaps if g.product.sku == sku and g.category == category]
    return found[0] if found else None


def test_a_strong_match_out_of_stock_is_told_apart_from_a_weak_one(handmade_shop):
    Product.objects.filter(sku="S1").update(in_stock=False)
    report = assortment_gaps(threshold=0.6)
    shoes = gap_of(report, "T1", "Shoes")
    assert shoes.reason == OUT_OF_STOCK and shoes.best.sku == "S2"
    assert shoes.best_score == pytest.approx(0.5, abs=0.01)
    assert shoes.top_score == pytest.approx(0.9, abs=0.01)
    assert gap_of(report, "T1", "Bags") is None  # B1 scores 0.7

    weak = gap_of(assortment_gaps(threshold=0.75), "T1", "Bags")
    assert weak.reason == WEAK and weak.best.sku == "B1"
    assert weak.top_score == pytest.approx(0.7, abs=0.01)


def test_a_complement_with_nothing_on_sale_is_a_gap_for_everyone(handmade_shop):
    Product.objects.filter(category__name="Bags").update(in_stock=False)
    report = assortment_gaps(threshold=-1.0)  # nothing is weak: only what is not on sale
    for top in ("T1", "T2", "T3"):
        bags = gap_of(report, top, "Bags")
        assert bags is not None and bags.reason == NONE_IN_STOCK and bags.best is None
    assert {g.category for g in report.gaps} == {"Bags"}
    assert report.products_short == len({g.product.sku for g in report.gaps}) >= 3
    thin = next(c for c in report.coverage if (c.category, c.complement) == ("Tops", "Bags"))
    assert thin.complement_shown == 0 and thin.short == thin.products == 3
    assert report.coverage[0].short_share == 1.0  # the thinnest first


def test_the_automatic_threshold_is_the_weakest_tenth(handmade_shop):
    report = assortment_gaps()
    assert report.threshold_is_auto and report.threshold is not None
    weak = [g for g in report.gaps if g.reason == WEAK]
    assert weak and all(g.best_score < report.threshold for g in weak)
    checked = sum(c.products for c in report.coverage)
    assert len(weak) <= 0.1 * checked + 1
    scores = [g.best_score for g in report.gaps]
    assert scores == sorted(scores)  # the weakest first


def test_new_arrivals_the_model_does_not_know_come_first(handmade_shop):
    Product.objects.create(sku="T9", title="New top", category=Category.objects.get(name="Tops"))
    report = assortment_gaps(threshold=0.0)
    first = report.gaps[0]
    assert (first.product.sku, first.reason, first.new_arrival) == ("T9", NOT_IN_MODEL, True)
    only_shoes = assortment_gaps(threshold=0.6, category="Shoes")
    assert {g.product.category.name for g in only_shoes.gaps} <= {"Shoes"}


def test_staff_read_the_report_and_download_it(handmade_shop):
    Product.objects.filter(sku="S1").update(in_stock=False)
    staff = User.objects.create_user("merch", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/assortment-gaps/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_product"))
    page = client.get("/admin/assortment-gaps/", {"threshold": "0.6"})
    assert page.status_code == 200
    assert b"strong matches out of stock" in page.content and b"Thin complements" in page.content
    assert b'href="/products/T1/"' in page.content
    report = page.context["report"]
    assert f"({report.products_short} products, {len(report.gaps)} gaps:".encode() in page.content
    download = client.get("/admin/assortment-gaps/", {"threshold": "0.6", "download": "csv"})
    assert download["Content-Disposition"].startswith('attachment; filename="assortment-gaps-')
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    t1_shoes = next(r for r in rows if (r["sku"], r["complementary_category"]) == ("T1", "Shoes"))
    assert t1_shoes["reason"] == OUT_OF_STOCK and t1_shoes["best_match_sku"] == "S2"
    assert t1_shoes["admin_url"].startswith("http://testserver/admin/catalog/product/")
    bad = client.get("/admin/assortment-gaps/", {"threshold": "lots"})
    assert bad.status_code == 200 and b"Enter a number" in bad.content
