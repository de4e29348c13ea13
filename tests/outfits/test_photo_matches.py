"""Match something you own: a shopper's photo, embedded by the active model, matched against
the catalog, on the page and through the API; stored only with the shopper's consent."""

from pathlib import Path

import pytest

from catalog.models import Product


@pytest.fixture
def photo_of(settings):
    """The stored image of a catalog product, as a shopper's photo would arrive."""

    def photo(product: Product) -> Path:
        return Path(settings.MEDIA_ROOT) / product.image.name

    return photo


def test_the_api_matches_a_photo_with_other_categories(
    trained_shop, storefront, photo_of, django_assert_num_queries
):
    skirt = Product.objects.filter(category__name="Bottoms").first()
    with photo_of(skirt).open("rb") as image:
        response = storefront.post(
            "/api/v1/matches/by-image/", {"image": image, "limit": 3}, format="multipart"
        )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["model_version"] == trained_shop.name and data["rec_id"]
    assert data["category_guessed"] is True
    groups = {g["category"]: g["matches"] for g in data["groups"]}
    assert groups and data["category"] not in groups
    assert all(1 <= len(m) <= 3 for m in groups.values())
    assert all(m["why"] == "learned" and m["in_stock"] for g in groups.values() for m in g)

    with photo_of(skirt).open("rb") as image:
        told = storefront.post(
            "/api/v1/matches/by-image/", {"image": image, "category": "bottoms"}, format="multipart"
        ).json()
    assert told["category"] == "Bottoms" and told["category_guessed"] is False
    assert "Bottoms" not in {g["category"] for g in told["groups"]}
    # The options may come in the query string too; the same one given two ways is refused.
    with photo_of(skirt).open("rb") as image:
        by_query = storefront.post(
            "/api/v1/matches/by-image/?limit=1", {"image": image}, format="multipart"
        ).json()
    assert by_query["groups"] and all(len(g["matches"]) == 1 for g in by_query["groups"])
    with photo_of(skirt).open("rb") as image:
        clash = storefront.post(
            "/api/v1/matches/by-image/?limit=1", {"image": image, "limit": 2}, format="multipart"
        )
    assert clash.status_code == 400 and "limit" in clash.json()["error"]["details"]
    # From the serving snapshot: the change counter is its only query (PostgreSQL down:
    # none, see tests/test_database_faults.py).
    with photo_of(skirt).open("rb") as image, django_assert_num_queries(1):
        storefront.post("/api/v1/matches/by-image/", {"image": image}, format="multipart")

    shown = [m["sku"] for g in told["groups"] for m in g["matches"]]
    Product.objects.filter(sku=shown[0]).update(active=False)
    with photo_of(skirt).open("rb") as image:
        again = storefront.post(
            "/api/v1/matches/by-image/", {"image": image, "category": "bottoms"}, format="multipart"
        ).json()
    assert shown[0] not in {m["sku"] for g in again["groups"] for m in g["matches"]}


def test_the_api_rejects_what_is_not_a_photo(trained_shop, storefront, tmp_path):
    fake = tmp_path / "shirt.jpg"
    fake.write_bytes(b"not an image at all")
    with fake.open("rb") as image:
        response = storefront.post(
            "/api/v1/matches/by-image/", {"image": image}, format="multipart"
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert "image: " in response.json()["error"]["message"]
    missing = storefront.post("/api/v1/matches/by-image/", {}, format="multipart")
    assert missing.json()["error"]["message"] == "image: No file was submitted."


def test_the_api_says_when_no_model_is_trained(db, storefront, draw_image, tmp_path):
    with draw_image(tmp_path / "shirt.png").open("rb") as image:
        response = storefront.post(
            "/api/v1/matches/by-image/", {"image": image}, format="multipart"
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_ready"


def test_a_backbone_that_cannot_load_is_a_503_tried_again_later(
    handmade_shop, storefront, client, draw_image, tmp_path, caplog
):
    """The hand-made version names a backbone with no weights here: photos are refused with
    a 503 saying so (the cause, with server paths, only in the log), and the next photos do
    not pay for another failed load."""
    photo = draw_image(tmp_path / "shirt.png")
    answers = []
    for _ in range(2):
        with photo.open("rb") as image:
            answers.append(
                storefront.post("/api/v1/matches/by-image/", {"image": image}, format="multipart")
            )
    with photo.open("rb") as image:
        page = client.post("/match/", {"photo": image})
    assert [a.status_code for a in answers] == [503, 503] and page.status_code == 503
    error = answers[0].json()["error"]
    assert error["code"] == "model_not_ready" and "backbone cannot be loaded" in error["message"]
    assert "OUTFITS_PRETRAINED" not in error["message"]
    assert "is not available right now" in page.content.decode()
    failures = [r for r in caplog.records if "Cannot embed photos" in r.getMessage()]
    assert len(failures) == 1 and "OUTFITS_PRETRAINED" in failures[0].getMessage()


def test_the_page_keeps_the_photo_only_with_consent(trained_shop, client, photo_of, settings):
    bag = Product.objects.filter(category__name="Bags").first()
    kept = Path(settings.VAR_DIR) / "private" / "photos"  # not under MEDIA_ROOT: staff only
    with photo_of(bag).open("rb") as image:
        page = client.post("/match/", {"photo": image})
    html = page.content.decode()
    assert page.status_code == 200 and "Goes well with your" in html
    assert html.count('class="card"') >= 2
    assert not kept.exists()
    with photo_of(bag).open("rb") as image:
        client.post("/match/", {"photo": image, "keep_photo": "on", "category": "Bags"})
    assert len(list(kept.iterdir())) == 1
    assert not (Path(settings.MEDIA_ROOT) / "shopper-photos").exists()


def test_the_result_shows_the_photo_and_a_corrected_category_needs_no_new_upload(
    trained_shop, client, photo_of
):
    import re
    from base64 import b64decode
    from io import BytesIO

    from PIL import Image

    skirt = Product.objects.filter(category__name="Bottoms").first()
    with photo_of(skirt).open("rb") as image:
        page = client.post("/match/", {"photo": image})
    html = page.content.decode()
    assert "no-store" in page["Cache-Control"]  # the shopper's photo is in the page
    shown = re.search(r'src="data:image/jpeg;base64,([^"]+)" alt="Your photo"', html).group(1)
    with Image.open(BytesIO(b64decode(shown))) as picture:
        assert picture.format == "JPEG" and not picture.info.get("exif")
    sent_back = re.search(r'name="shown_photo" value="([^"]+)"', html).group(1)
    assert sent_back == shown
    # The shopper says it is a bag: the same photo, matched again, no upload.
    again = client.post("/match/", {"shown_photo": sent_back, "category": "Bags"})
    assert again.status_code == 200
    assert "Goes well with your bags" in again.content.decode()
    assert client.post("/match/", {"shown_photo": "not base64!"}).status_code == 400
    empty = client.post("/match/", {})
    assert empty.status_code == 400 and "Choose a photo" in empty.content.decode()


def test_the_first_photo_after_a_start_is_told_the_model_is_warming_up(
    trained_shop, storefront, client, photo_of, settings
):
    """The photo model (torch, the backbone) loads in the background with a process's first
    photo; a photo that cannot wait for it gets a 503 with Retry-After, then the next one its
    matches."""
    from embeddings import loaded_versions

    loaded_versions.photo_encoders.current = None  # as in a process that just started
    settings.OUTFITS_PHOTO_WARMUP_WAIT_SECONDS = 0.0
    skirt = Product.objects.filter(category__name="Bottoms").first()
    with photo_of(skirt).open("rb") as image:
        first = storefront.post("/api/v1/matches/by-image/", {"image": image}, format="multipart")
    assert first.status_code == 503 and first["Retry-After"] == "5"
    assert "warming up" in first.json()["error"]["message"]
    loaded_versions.photo_encoders.warming.join(60)
    loaded_versions.photo_encoders.current = None  # the page, in a process that just started
    with photo_of(skirt).open("rb") as image:
        page = client.post("/match/", {"photo": image})
    assert page.status_code == 503 and "warming up" in page.content.decode()
    loaded_versions.photo_encoders.warming.join(60)
    with photo_of(skirt).open("rb") as image:
        then = storefront.post("/api/v1/matches/by-image/", {"image": image}, format="multipart")
    assert then.status_code == 200 and then.json()["groups"]
