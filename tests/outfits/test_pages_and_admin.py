"""Shop pages without JavaScript, and the admin where merchandisers pin, block, hand out API keys
and read click-through rates."""

import re

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from outfits.models import ApiKey, BlockedPair, PinnedMatch, RecommendationEvent


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("merch", "merch@example.com", "pw")
    client.force_login(user)
    return client


def test_product_page_rows_carry_badges_and_link_to_complete_the_look(handmade_shop, client):
    PinnedMatch.objects.create(product=handmade_shop["T1"], match=handmade_shop["P4"], position=1)
    html = client.get("/products/T1/").content.decode()
    assert 'href="/products/T1/look/"' in html
    assert "Featured" in html and "Stylist pick" in html  # P4 pinned; S1 and B1 curated
    assert html.index("/products/P4/") < html.index("/products/P1/")


def test_complete_the_look_page_shuffles_without_javascript(handmade_shop, client):
    first = client.get("/products/T1/look/").content.decode()
    assert 'href="?shuffle=1"' in first and "<script" not in first
    second = client.get("/products/T1/look/?shuffle=1").content.decode()
    links = lambda html: re.findall(r'href="(/products/[^/]+/)"', html)  # noqa: E731
    assert links(first) != links(second)
    assert "outfit 2" in second
    assert client.get("/products/T1/look/?shuffle=junk").status_code == 200
    assert client.get("/products/NOPE/look/").status_code == 404


def test_photo_page_explains_when_no_model_is_trained(db, client, draw_image, tmp_path):
    page = client.get("/match/").content.decode()
    assert 'enctype="multipart/form-data"' in page and "never stored" in page
    with draw_image(tmp_path / "shirt.png").open("rb") as photo:
        response = client.post("/match/", {"photo": photo})
    html = response.content.decode()
    assert response.status_code == 503 and "is not available right now" in html
    assert "staff" not in html.lower().split("<main")[1]  # no developer text for shoppers
    not_an_image = client.post("/match/", {"photo": (tmp_path / "x.txt").open("wb+")})
    assert not_an_image.status_code == 400


def test_a_pin_made_in_the_admin_shows_at_once_and_same_category_is_refused(
    handmade_shop, staff, storefront
):
    response = staff.post(
        "/admin/outfits/pinnedmatch/add/",
        {"product": handmade_shop["T1"].pk, "match": handmade_shop["B2"].pk, "position": 1},
    )
    assert response.status_code == 302
    bags = next(
        g
        for g in storefront.get("/api/v1/products/T1/matches/").json()["groups"]
        if g["category"] == "Bags"
    )
    assert (bags["matches"][0]["sku"], bags["matches"][0]["why"]) == ("B2", "pinned")
    same = staff.post(
        "/admin/outfits/pinnedmatch/add/",
        {"product": handmade_shop["T1"].pk, "match": handmade_shop["T2"].pk, "position": 1},
    )
    assert same.status_code == 200 and "matches come from other categories" in same.content.decode()
    staff.post(
        "/admin/outfits/blockedpair/add/",
        {"product": handmade_shop["T1"].pk, "other": handmade_shop["P1"].pk},
    )
    assert BlockedPair.objects.count() == 1
    data = storefront.get("/api/v1/products/T1/matches/").json()
    assert "P1" not in {m["sku"] for g in data["groups"] for m in g["matches"]}


def test_an_api_key_made_in_the_admin_is_shown_once_and_works(handmade_shop, staff):
    response = staff.post(
        "/admin/outfits/apikey/add/",
        {
            "name": "Main shop",
            "allowed_origins": "https://shop.example.com",
            "requests_per_minute": "",
        },
    )
    page = response.content.decode()
    raw_key = re.search(r'id="new-api-key">(om_\w+_[\w-]+)<', page).group(1)
    # Shown on the answer to the form itself: no cookie carries it, no cache keeps the page.
    assert all(raw_key not in cookie.value for cookie in staff.cookies.values())
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(name="Main shop")
    assert key.origins == ["https://shop.example.com"] and raw_key not in key.secret_sha256
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert client.get("/api/v1/products/T1/matches/").status_code == 200
    listing = staff.get("/admin/outfits/apikey/").content.decode()
    assert raw_key not in listing and key.prefix in listing
    staff.post(
        "/admin/outfits/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert client.get("/api/v1/products/T1/matches/").status_code == 401


def test_the_events_page_shows_ctr_per_version_and_category(handmade_shop, staff, storefront):
    rec_id = storefront.get("/api/v1/products/T1/matches/").json()["rec_id"]
    for kind, skus in [("impression", ["P1", "S1", "B1", "K1"]), ("click", ["P1"])]:
        storefront.post(
            "/api/v1/events/", {"rec_id": rec_id, "type": kind, "skus": skus}, format="json"
        )
    assert RecommendationEvent.objects.count() == 5
    html = staff.get("/admin/outfits/recommendationevent/").content.decode()
    assert "Per model version" in html and "Per category" in html
    assert re.search(r"<td>handmade-1</td><td>4</td><td>1</td>\s*<td>25%", html)
    assert re.search(r"<td>Trousers</td><td>1</td><td>1</td>\s*<td>100%", html)


def test_the_shops_error_pages_are_its_own(client, db, rf):
    from outfits.api.errors import server_error

    missing = client.get("/products/NO-SUCH-THING/")
    assert missing.status_code == 404 and "couldn’t find that page" in missing.content.decode()
    assert 'rel="icon"' in missing.content.decode()
    crashed = server_error(rf.get("/products/A1/"))  # what Django renders for a crash
    assert crashed.status_code == 500
    assert "Something went wrong on our side" in crashed.content.decode()
    assert client.get("/favicon.ico").status_code in {301, 302}
