"""Stylists' verdicts on shown pairs: given on the product page (staff) and in the admin,
stored with the version that showed the pair; disagreements: bad pairs still ranked high."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from outfits.models import PairVerdict
from outfits.verdicts import InvalidVerdict, disagreements, record_verdict


@pytest.fixture
def stylist(db) -> Client:
    user = User.objects.create_user("stylist", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["add_pairverdict", "view_pairverdict"])
    )
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def test_staff_judge_a_shown_pair_on_the_product_page(handmade_shop, stylist, settings):
    page = stylist.get("/products/T1/").content.decode()
    assert page.count('name="verdict" value="bad"') >= 4  # under every match shown
    rec_id = re.search(r'name="rec_id" value="([^"]+)"', page).group(1)
    response = stylist.post(
        "/products/T1/verdict/",
        {"match": "P1", "verdict": "bad", "note": "too formal", "rec_id": rec_id},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/products/T1/#match-{handmade_shop['P1'].pk}"
    verdict = PairVerdict.objects.get()
    assert (verdict.product.sku, verdict.match.sku, verdict.verdict) == ("T1", "P1", "bad")
    assert verdict.note == "too formal" and verdict.given_by == stylist.user
    assert verdict.model_version == handmade_shop.version  # the one whose answer showed it

    stylist.post("/products/T1/verdict/", {"match": "P1", "verdict": "good"})
    assert PairVerdict.objects.get().verdict == "good"  # a second thought replaces the first
    again = stylist.get("/products/T1/").content.decode()
    assert re.search(r'value="good" aria-pressed="true"', again)


def test_shoppers_see_no_verdict_buttons_and_cannot_post_one(handmade_shop):
    shopper = Client()
    assert b'name="verdict"' not in shopper.get("/products/T1/").content
    refused = shopper.post("/products/T1/verdict/", {"match": "P1", "verdict": "bad"})
    assert refused.status_code == 403 and not PairVerdict.objects.exists()


def test_a_verdict_that_cannot_be_recorded_says_why(handmade_shop, stylist):
    answer = stylist.post("/products/T1/verdict/", {"match": "NOPE", "verdict": "bad"})
    assert answer.status_code == 400 and b"no product with SKU 'NOPE'" in answer.content
    with pytest.raises(InvalidVerdict, match="verdict must be good or bad"):
        record_verdict("T1", "P1", "meh")
    with pytest.raises(InvalidVerdict, match="no pair with itself"):
        record_verdict("T1", "T1", "bad")
    assert stylist.get("/products/T1/verdict/").status_code == 405
    assert not PairVerdict.objects.exists()


def test_bad_pairs_still_ranked_high_are_disagreements(handmade_shop, stylist, settings):
    settings.OUTFITS_MATCHES_PER_CATEGORY = 3
    record_verdict("T1", "P1", "bad", "clashes")  # P1 is T1's best trousers
    record_verdict("T1", "S3", "bad")  # S3 is T1's third shoe of three: within the row
    record_verdict("T1", "B1", "good")  # good pairs are no disagreement
    record_verdict("T1", "P4", "bad")  # fourth of its trousers: below the row, not shown
    found = disagreements()
    assert [(d.verdict.match.sku, d.rank) for d in found] == [("P1", 1), ("S3", 3)]
    assert found[0].score == pytest.approx(0.8, abs=0.01)
    page = stylist.get("/admin/outfits/pairverdict/disagreements/")
    assert page.status_code == 200 and b"clashes" in page.content
    assert b'href="/products/P1/"' in page.content


def test_verdicts_given_in_the_admin_record_who_and_the_active_version(handmade_shop, db):
    admin_user = User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/outfits/pairverdict/add/",
        {
            "product": handmade_shop["T2"].pk,
            "match": handmade_shop["K2"].pk,
            "verdict": "good",
            "note": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    verdict = PairVerdict.objects.get()
    assert verdict.given_by == admin_user and verdict.model_version == handmade_shop.version
