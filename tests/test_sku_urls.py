"""SKUs as retailers write them (`/`, spaces, `#`, `?`, `%`, `+`, non-ASCII letters): every one
the importer accepts opens its page, its "complete the look" and its API resources, and every
link to it leads back to it; one that no web address can carry is rejected at import, saying
why."""

import csv
import html
import io
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.urls import reverse

from catalog.catalog_rows import sku_problem
from catalog.models import Category, ImportJob, Product
from embeddings import versions
from embeddings.engine.artifacts import ModelVersionWriter, read_manifest
from embeddings.engine.index import CompatibilityIndex
from embeddings.models import ModelVersion
from outfits.models import Outfit

SKUS = {
    "AB/123": "Tops",
    "A B": "Tops",
    "ü-1": "Tops",
    "X?y#z%": "Trousers",
    "a+b": "Trousers",
    "a&b=c;d/look-2": "Trousers",
    "S#1/41": "Shoes",
    "店 7/matchesX": "Shoes",
    "~:@!$'()*,\"<>": "Shoes",
}
OUTFITS = [
    ["AB/123", "X?y#z%", "S#1/41"],
    ["A B", "a+b", "店 7/matchesX"],
    ["ü-1", "a&b=c;d/look-2", "~:@!$'()*,\"<>"],
]


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def activate_version_of(skus: list[str], settings) -> ModelVersion:
    """A model version over `skus` (fixed random vectors, OUTFITS as its outfits), written and
    activated as training would."""
    vectors = np.random.default_rng(7).normal(size=(len(skus), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {sku: i for i, sku in enumerate(skus)}
    index = CompatibilityIndex.build(
        skus, [SKUS[s] for s in skus], vectors, [[row[s] for s in o] for o in OUTFITS]
    )
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), "odd-skus") as writer:
        index.save(writer.directory)
        directory = writer.commit(backbone="handmade", item_count=len(skus))
    version = ModelVersion.objects.create(
        name="odd-skus",
        directory=directory.name,
        backbone="handmade",
        manifest=read_manifest(directory, False),
    )
    versions.activate(version)
    return version


@pytest.fixture
def odd_sku_shop(run_import, settings):
    """SKUS imported through the real importer, OUTFITS through the outfits importer, and a
    model version over them."""
    catalog = run_import(
        csv_text([["sku", "title", "category"]] + [[s, f"Item {s}", c] for s, c in SKUS.items()])
    )
    assert (catalog.status, catalog.created, catalog.rejected) == ("succeeded", len(SKUS), 0)
    outfits = run_import(
        csv_text([["outfit_id", "sku"]] + [[f"O{n}", s] for n, o in enumerate(OUTFITS) for s in o]),
        kind="outfits",
    )
    assert (outfits.status, outfits.created, outfits.rejected) == ("succeeded", 3, 0), (
        outfits.message,
        list(outfits.rejections.values_list("value", "reason")),
    )
    assert [
        list(o.items.order_by("position").values_list("product__sku", flat=True))
        for o in Outfit.objects.order_by("external_id")
    ] == OUTFITS
    return activate_version_of(list(SKUS), settings)


def links(response) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', response.content.decode())]


def product_links(response) -> list[str]:
    return [h for h in links(response) if h.startswith("/products/")]


def followed(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, url
    return response


def sku_behind(client, url: str) -> str:
    """The SKU of the product whose page (or complete-the-look page) `url` opens."""
    return followed(client, url).context["product"].sku


def test_every_page_and_link_of_products_with_odd_skus_works(odd_sku_shop, client):
    listing = followed(client, "/")
    assert {sku_behind(client, u) for u in product_links(listing)} == set(SKUS)
    for category in Category.objects.all():
        page = followed(client, f"/?category={category.slug}")
        shown = {sku_behind(client, u) for u in product_links(page)}
        assert shown == {s for s, c in SKUS.items() if c == category.name}
    for sku, category in SKUS.items():
        assert sku_behind(client, f"/products/{quote(sku, safe='')}/") == sku  # fully encoded
        page = followed(client, reverse("shop:product-detail", args=[sku]))
        assert page.context["product"].sku == sku
        look_url = reverse("shop:complete-look", args=[sku])
        assert look_url in links(page)
        matches = [u for u in product_links(page) if u != look_url]
        assert matches, f"no matches on the page of {sku}"
        assert all(SKUS[sku_behind(client, u)] != category for u in matches)
        look = followed(client, look_url)
        assert look.context["product"].sku == sku
        in_look = {sku_behind(client, u) for u in product_links(look)}
        assert sku in in_look and len(in_look) == 3  # the anchor and one per other category
        category_link = next(u for u in links(page) if "?category=" in u)
        assert sku in {
            sku_behind(client, u) for u in product_links(followed(client, category_link))
        }


def path_of(absolute_url: str) -> str:
    assert absolute_url.startswith("http://testserver/"), absolute_url
    return absolute_url.removeprefix("http://testserver")


def test_the_api_serves_odd_skus_and_its_urls_open_their_products(odd_sku_shop, storefront, client):
    listing = storefront.get("/api/v1/products/", {"page_size": 100})
    assert listing.status_code == 200
    results = listing.json()["results"]
    assert {p["sku"] for p in results} == set(SKUS)
    page_url = {p["sku"]: p["url"] for p in results}
    for product in results:
        assert sku_behind(client, path_of(product["url"])) == product["sku"]
    for sku in SKUS:
        for encoded in (quote(sku, safe=""), quote(sku, safe="/")):
            detail = storefront.get(f"/api/v1/products/{encoded}/")
            assert detail.status_code == 200 and detail.json()["sku"] == sku
            found = storefront.get(f"/api/v1/products/{encoded}/matches/")
            assert found.status_code == 200 and found.json()["sku"] == sku
        assert reverse("api-v1:product-detail", args=[sku]).endswith(
            reverse("shop:product-detail", args=[sku]).removeprefix("/")
        )
        groups = found.json()["groups"]
        assert groups, f"no matches for {sku}"
        for match in (m for g in groups for m in g["matches"]):
            assert match["url"] == page_url[match["sku"]]  # one address per product
            assert sku_behind(client, path_of(match["url"])) == match["sku"]
    completed = storefront.post(
        "/api/v1/outfits/complete/", {"skus": ["AB/123"]}, format="json"
    ).json()
    assert completed["skus"] == ["AB/123"] and len(completed["items"]) == 2
    for item in completed["items"]:
        assert sku_behind(client, path_of(item["url"])) == item["sku"]


BAD_SKUS = {
    "AB//1": "empty segment",
    "/AB": "empty segment",
    "AB/": "empty segment",
    "./x": "'.' or '..'",
    "a/../b": "'.' or '..'",
    ".": "'.' or '..'",
    "..": "'.' or '..'",
    "A\x07B": "control character U+0007",
    "A\nB": "control character U+000A",
    "A\tB": "control character U+0009",
    "X/look": "address of another page",
    "X/matches": "address of another page",
    "Y" * 65: "longer than 64 characters",
}


def test_skus_no_web_address_can_carry_are_rejected_with_the_reason(run_import, client):
    rows = [["sku", "category"], ["fine/1", "Tops"]] + [[s, "Tops"] for s in BAD_SKUS]
    job = run_import(csv_text(rows))
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.created, job.rejected) == (1, len(BAD_SKUS))
    reasons = {r.value: r.reason for r in job.rejections.all()}
    assert reasons.keys() == BAD_SKUS.keys()
    for sku, reason in BAD_SKUS.items():
        assert reason in reasons[sku], (sku, reasons[sku])
    assert "/products/X/look/" in reasons["X/look"]
    assert list(Product.objects.values_list("sku", flat=True)) == ["fine/1"]
    assert followed(client, "/").status_code == 200


def test_spaces_around_a_sku_are_named_as_the_problem():
    # CSV cells arrive stripped; the check still holds for any other caller.
    assert "space" in sku_problem(" AB")
    assert "space" in sku_problem("AB\u00a0")
    assert sku_problem("AB/123") is None


def test_the_admin_refuses_the_skus_the_importer_refuses(admin_client, draw_image, tmp_path):
    """A product added by hand passes the importer's SKU check; the product list's pictures
    carry no inline style, which the Content-Security-Policy would block."""
    tops = Category.objects.create(name="Tops")

    def add(sku: str):
        with draw_image(tmp_path / "top.png").open("rb") as image:
            return admin_client.post(
                reverse("admin:catalog_product_add"),
                {
                    "sku": sku,
                    "title": "A top",
                    "category": tops.pk,
                    "in_stock": "on",
                    "active": "on",
                    "attributes": "{}",
                    "image": image,
                },
            )

    refused = add("X/look")
    assert refused.status_code == 200
    assert "This SKU cannot be used: it" in html.unescape(refused.content.decode())
    assert "address of another page" in refused.content.decode()
    assert not Product.objects.exists()
    assert add("AB/123").status_code == 302
    assert list(Product.objects.values_list("sku", flat=True)) == ["AB/123"]
    listing = admin_client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert 'class="admin-thumbnail"' in listing and 'style="' not in listing
