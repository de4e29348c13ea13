"""A product edited by hand in the admin: its picture stored as the importer stores it, and a
title staff write is the product's own."""

import importlib
import io
import json

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from catalog.models import Product

migration = importlib.import_module("catalog.migrations.0006_product_title_made_up")


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def change(admin_client, product: Product, **fields):
    form = {
        "sku": product.sku,
        "title": product.title,
        "category": product.category_id,
        "colour": product.colour,
        "price": product.price or "",
        "in_stock": "on",
        "active": "on",
        "attributes": json.dumps(product.attributes),
    } | fields
    return admin_client.post(reverse("admin:catalog_product_change", args=[product.pk]), form)


@pytest.fixture
def imported(run_import, images) -> Product:
    job = run_import(
        "sku,category,colour,image\nA1,Trousers,Navy,a.png\n", images_folder=str(images)
    )
    assert job.status == "succeeded", job.message
    return Product.objects.get(sku="A1")


def test_a_picture_uploaded_in_the_admin_is_stored_by_content_with_its_thumbnail(
    admin_client, imported
):
    old = (imported.image.name, imported.thumbnail.name, imported.image_sha256)
    response = change(admin_client, imported, image=SimpleUploadedFile("x.png", png("red")))
    assert response.status_code == 302, response.content[:2000]
    product = Product.objects.get(sku="A1")
    assert product.image_sha256 not in ("", old[2])
    assert product.image.name == f"products/{product.image_sha256[:2]}/{product.image_sha256}.jpg"
    assert product.thumbnail.name == product.image.name.replace(".jpg", "-thumb.jpg")
    with Image.open(product.thumbnail.path) as thumbnail:  # the new picture, not the old one
        assert thumbnail.convert("RGB").getpixel((5, 5)) == pytest.approx((254, 0, 0), abs=3)
    # The same picture again (another product, another file name): the same stored name.
    other = change(admin_client, product, image=SimpleUploadedFile("y.png", png("red")))
    assert other.status_code == 302
    assert Product.objects.get(sku="A1").image.name == product.image.name


def test_a_broken_picture_is_refused_and_the_product_keeps_its_own(admin_client, imported):
    response = change(admin_client, imported, image=SimpleUploadedFile("x.png", b"not a png"))
    assert response.status_code == 200 and b"errorlist" in response.content
    assert Product.objects.get(sku="A1").image.name == imported.image.name


def test_a_title_written_by_staff_is_the_products_own(admin_client, imported):
    assert imported.title == "Navy trousers" and imported.title_made_up
    assert change(admin_client, imported, colour="Blue").status_code == 302
    assert Product.objects.get(sku="A1").title_made_up  # the title itself was not touched
    assert change(admin_client, imported, title="Navy pleated chinos").status_code == 302
    assert not Product.objects.get(sku="A1").title_made_up


def test_products_imported_before_the_flag_are_marked_by_their_titles(imported):
    Product.objects.update(title_made_up=False)
    merchant = Product.objects.create(
        sku="B1", title="Wide-leg trousers", category=imported.category, colour="Navy"
    )
    migration.mark_made_up_titles(apps, None)
    assert Product.objects.get(sku="A1").title_made_up
    assert not Product.objects.get(pk=merchant.pk).title_made_up
