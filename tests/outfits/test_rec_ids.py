"""Signed rec_ids: they round-trip what an answer showed, and a photo's answer signs its
products as the others do."""

from pathlib import Path

import pytest

from catalog.models import Product
from outfits.models import RecommendationEvent
from outfits.rec_ids import (
    MAX_LENGTH,
    RecIdRefused,
    decode_pks,
    encode_pks,
    issue_rec_id,
    verify_rec_id,
)


@pytest.mark.parametrize(
    "pks", [[], [1], [3, 1, 2, 2], [127, 128, 16_383, 16_384], [5, 2**31 - 1, 2**40]]
)
def test_product_keys_round_trip_sorted_and_deduplicated(pks):
    assert decode_pks(encode_pks(pks)) == frozenset(pks)


def test_a_rec_id_says_its_version_time_and_products(settings):
    settings.OUTFITS_REC_ID_MAX_AGE_DAYS = 30
    rec_id = issue_rec_id(7, encode_pks([42, 9]), now=1_795_000_000)
    answer = verify_rec_id(rec_id, now=1_795_000_100)
    assert (answer.model_version_id, answer.issued_at) == (7, 1_795_000_000)
    assert answer.product_pks == {9, 42}
    assert verify_rec_id(issue_rec_id(None, "")).model_version_id is None
    with pytest.raises(RecIdRefused, match="expired"):
        verify_rec_id(rec_id, now=1_795_000_000 + 31 * 86_400)


def test_a_large_answer_fits_what_events_accept():
    """50 matches in each of 40 rows over a million products stays within MAX_LENGTH."""
    pks = range(1_000_000, 1_000_000 + 2_000 * 500, 500)
    assert len(issue_rec_id(123, encode_pks(pks))) < MAX_LENGTH


def test_events_count_for_the_products_a_photo_answer_showed(trained_shop, storefront, settings):
    skirt = Product.objects.filter(category__name="Bottoms").first()
    with (Path(settings.MEDIA_ROOT) / skirt.image.name).open("rb") as image:
        data = storefront.post(
            "/api/v1/matches/by-image/", {"image": image, "limit": 2}, format="multipart"
        ).json()
    shown = [m["sku"] for g in data["groups"] for m in g["matches"]]
    assert shown
    answer = verify_rec_id(data["rec_id"])
    assert answer.product_pks == set(
        Product.objects.filter(sku__in=shown).values_list("pk", flat=True)
    )
    body = {"rec_id": data["rec_id"], "type": "click", "skus": shown}
    assert storefront.post("/api/v1/events/", body, format="json").status_code == 201
    assert RecommendationEvent.objects.filter(model_version=trained_shop).count() == len(shown)
    other = Product.objects.exclude(sku__in=shown).first()
    not_shown = {**body, "skus": [other.sku]}
    assert storefront.post("/api/v1/events/", not_shown, format="json").status_code == 400
