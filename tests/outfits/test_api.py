"""The storefront API v1: keys, throttling, CORS, errors, ETags, every endpoint's answers."""

import hashlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Product
from outfits import events
from outfits.api_keys import create_api_key, revoke_api_key
from outfits.models import (
    ApiKey,
    BlockedProduct,
    EventReceipt,
    PinnedMatch,
    RecommendationEvent,
)
from outfits.rec_ids import encode_pks, issue_rec_id, verify_rec_id

MATCHES = "/api/v1/products/{}/matches/"


def error_of(response) -> dict:
    return response.json()["error"]


# --- Authentication -------------------------------------------------------------------------


def test_without_a_key_every_storefront_endpoint_is_401(handmade_shop):
    anonymous = APIClient()
    for method, path in [
        ("get", "/api/v1/products/"),
        ("get", "/api/v1/products/T1/"),
        ("get", MATCHES.format("T1")),
        ("post", "/api/v1/outfits/complete/"),
        ("post", "/api/v1/matches/by-image/"),
        ("post", "/api/v1/events/"),
    ]:
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, path
        assert error_of(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Api-Key"


def test_keys_are_hashed_at_rest_and_revocable(handmade_shop, storefront):
    key = ApiKey.objects.get(pk=storefront.api_key.pk)
    secret = storefront.raw_key.split("_", 2)[2]
    assert storefront.raw_key not in str(ApiKey.objects.values().get(pk=key.pk))
    assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert storefront.get(MATCHES.format("T1")).status_code == 200

    wrong = APIClient(HTTP_AUTHORIZATION=f"Api-Key {storefront.raw_key[:-2]}xx")
    assert error_of(wrong.get(MATCHES.format("T1")))["code"] == "invalid_api_key"
    revoke_api_key(key)
    response = storefront.get(MATCHES.format("T1"))
    assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"


def test_the_x_api_key_header_works_too(handmade_shop, storefront):
    client = APIClient(HTTP_X_API_KEY=storefront.raw_key)
    assert client.get(MATCHES.format("T1")).status_code == 200


# --- Throttling (counted in Redis when it runs) ---------------------------------------------


def test_each_key_is_throttled_on_its_own_budget(handmade_shop, settings):
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower() or pytest.skip("no Redis")
    _, tight = create_api_key("tight", requests_per_minute=3)
    _, other = create_api_key("other")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {tight}")
    assert [client.get(MATCHES.format("T1")).status_code for _ in range(3)] == [200] * 3
    refused = client.get(MATCHES.format("T1"))
    assert refused.status_code == 429 and error_of(refused)["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert (
        APIClient(HTTP_AUTHORIZATION=f"Api-Key {other}").get(MATCHES.format("T1")).status_code
        == 200
    )


# --- CORS per key ---------------------------------------------------------------------------


def test_cors_allows_only_the_keys_origins(handmade_shop, storefront):
    preflight = APIClient().options(
        MATCHES.format("T1"),
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    stranger = APIClient().options(
        MATCHES.format("T1"),
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "Access-Control-Allow-Origin" not in stranger

    allowed = storefront.get(MATCHES.format("T1"), HTTP_ORIGIN="https://shop.example.com")
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "ETag" in allowed["Access-Control-Expose-Headers"]
    refused = storefront.get(MATCHES.format("T1"), HTTP_ORIGIN="https://evil.example.net")
    assert refused.status_code == 403 and error_of(refused)["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused
    assert storefront.get(MATCHES.format("T1")).status_code == 200  # server-to-server


# --- Matches --------------------------------------------------------------------------------


def test_matches_are_grouped_with_why_and_a_rec_id(handmade_shop, storefront):
    data = storefront.get(MATCHES.format("T1"), {"limit": 2}).json()
    assert data["sku"] == "T1" and data["model_version"] == "handmade-1" and data["in_model"]
    groups = {g["category"]: g["matches"] for g in data["groups"]}
    answer = verify_rec_id(data["rec_id"])  # signed, naming every product shown
    shown = {m["sku"] for matches in groups.values() for m in matches}
    assert answer.model_version_id == handmade_shop.version.pk
    assert answer.product_pks == {handmade_shop[sku].pk for sku in shown}
    assert set(groups) == {"Shoes", "Trousers", "Bags", "Skirts"}
    first = groups["Trousers"][0]
    assert (
        first["sku"] == "P1" and first["why"] == "learned" and first["score"] == pytest.approx(0.8)
    )
    assert first["url"] == "http://testserver/products/P1/" and first["in_stock"] is True
    assert all(len(matches) <= 2 for matches in groups.values())


def test_the_fast_match_json_equals_drfs_own_for_the_declared_fields(handmade_shop, rf):
    from rest_framework.request import Request
    from rest_framework.serializers import Serializer

    from outfits.api.serializers import GoesWellWithSerializer, MatchSerializer
    from outfits.recommendations import goes_well_with

    handmade_shop["P1"].price = None
    handmade_shop["P1"].save()
    context = {"request": Request(rf.get("/"))}
    found = goes_well_with(handmade_shop["T1"], limit=5)
    for group in found.groups:
        for match in group.matches:
            fast = MatchSerializer(match, context=context).data
            declared = Serializer.to_representation(MatchSerializer(context=context), match)
            assert fast == declared
    answer = {"sku": "T1", **found.__dict__}
    fast = GoesWellWithSerializer(answer, context=context).data
    declared = Serializer.to_representation(GoesWellWithSerializer(context=context), answer)
    assert fast == declared and len(fast["groups"]) == 4


def test_matches_filters(handmade_shop, storefront):
    data = storefront.get(
        MATCHES.format("T1"), {"category": "shoes,Bags", "price_max": "20"}
    ).json()
    assert {g["category"] for g in data["groups"]} <= {"Shoes", "Bags"}
    assert all(float(m["price"]) <= 20 for g in data["groups"] for m in g["matches"])
    Product.objects.filter(sku="P1").update(in_stock=False)

    def skus(params):
        return {
            m["sku"]
            for g in storefront.get(MATCHES.format("T1"), params).json()["groups"]
            for m in g["matches"]
        }

    assert "P1" not in skus({})
    assert "P1" in skus({"in_stock": "false"})


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"limit": "0"}, "limit", "greater than or equal to 1"),
        ({"limit": "many"}, "limit", "valid integer"),
        ({"limit": "500"}, "limit", "less than or equal to 50"),
        ({"category": "hats"}, "category", "unknown category: hats"),
        ({"price_max": "cheap"}, "price_max", "valid number"),
        ({"in_stock": "maybe"}, "in_stock", 'Must be "true" or "false"'),
        ({"in_stock": "0"}, "in_stock", 'Must be "true" or "false"'),  # not guessed
    ],
)
def test_bad_parameters_are_400_with_a_clear_message(
    handmade_shop, storefront, params, field, says
):
    response = storefront.get(MATCHES.format("T1"), params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_parameters" and field in error["details"]
    assert says in error["message"] and error["message"].startswith(f"{field}: ")


def test_unknown_and_inactive_products_are_404(handmade_shop, storefront):
    assert error_of(storefront.get(MATCHES.format("NOPE")))["code"] == "unknown_sku"
    Product.objects.filter(sku="T1").update(active=False)
    assert storefront.get(MATCHES.format("T1")).status_code == 404
    assert storefront.get("/api/v1/products/T1/").status_code == 404
    data = storefront.get(MATCHES.format("P1"), {"limit": 10}).json()
    assert "T1" not in {m["sku"] for g in data["groups"] for m in g["matches"]}


def test_pins_and_blocks_show_in_the_api_at_once(handmade_shop, storefront):
    PinnedMatch.objects.create(product=handmade_shop["T1"], match=handmade_shop["P4"], position=1)
    BlockedProduct.objects.create(product=handmade_shop["S1"])
    data = storefront.get(MATCHES.format("T1")).json()
    groups = {g["category"]: g["matches"] for g in data["groups"]}
    assert (groups["Trousers"][0]["sku"], groups["Trousers"][0]["why"]) == ("P4", "pinned")
    assert "S1" not in {m["sku"] for m in groups["Shoes"]}


# --- ETags ----------------------------------------------------------------------------------


def test_etag_304_and_changes_with_the_answer_product_and_version(
    handmade_shop, storefront, handmade_version
):
    first = storefront.get(MATCHES.format("T1"))
    etag = first["ETag"]
    again = storefront.get(MATCHES.format("T1"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    assert (
        storefront.get(MATCHES.format("T1"), {"limit": 1}, HTTP_IF_NONE_MATCH=etag).status_code
        == 200
    )

    Product.objects.filter(sku="S1").update(in_stock=False)  # a match goes out of stock
    changed = storefront.get(MATCHES.format("T1"), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    etag = changed["ETag"]
    handmade_shop["T1"].save()  # the product itself changes
    assert storefront.get(MATCHES.format("T1"), HTTP_IF_NONE_MATCH=etag).status_code == 200
    etag = storefront.get(MATCHES.format("T1"))["ETag"]
    handmade_version(list(handmade_shop.products), "handmade-2")  # same vectors, new version
    renewed = storefront.get(MATCHES.format("T1"), HTTP_IF_NONE_MATCH=etag)
    assert renewed.status_code == 200 and renewed.json()["model_version"] == "handmade-2"


# --- Complete the outfit --------------------------------------------------------------------


def test_complete_an_outfit(handmade_shop, storefront):
    response = storefront.post(
        "/api/v1/outfits/complete/", {"skus": ["T1"], "categories": ["trousers"]}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert [i["sku"] for i in data["items"]] == ["P1"] and data["skus"] == ["T1"]
    whole = storefront.post("/api/v1/outfits/complete/", {"skus": ["T1"]}, format="json").json()
    categories = [i["category"] for i in whole["items"]]
    assert len(categories) == len(set(categories)) >= 3 and whole["score"] is not None
    shuffled = storefront.post(
        "/api/v1/outfits/complete/", {"skus": ["T1"], "shuffle": 1}, format="json"
    ).json()
    assert shuffled["shuffle"] == 1 and shuffled["items"] != whole["items"]


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({}, 400, "invalid_parameters", "skus: This field is required."),
        ({"skus": []}, 400, "invalid_parameters", "skus: "),
        ({"skus": ["T1"], "categories": ["hats"]}, 400, "invalid_parameters", "unknown category"),
        ({"skus": ["T1"], "shuffle": -1}, 400, "invalid_parameters", "shuffle: "),
        ({"skus": ["T1", "NOPE"]}, 404, "unknown_sku", "'NOPE'"),
    ],
)
def test_complete_rejects_bad_requests(handmade_shop, storefront, body, status, code, says):
    response = storefront.post("/api/v1/outfits/complete/", body, format="json")
    assert response.status_code == status
    assert error_of(response)["code"] == code and says in error_of(response)["message"]


# --- Products -------------------------------------------------------------------------------


def test_products_are_paginated_and_filtered(handmade_shop, storefront):
    Product.objects.filter(sku="T2").update(active=False)
    page = storefront.get("/api/v1/products/", {"page_size": 5}).json()
    assert page["count"] == len(handmade_shop.products) - 1 and len(page["results"]) == 5
    assert page["next"].startswith("http://testserver/api/v1/products/?page=2")
    for name in ["tops", "Tops", "TOPS"]:  # slug, name, any case
        tops = storefront.get("/api/v1/products/", {"category": name}).json()
        assert {p["sku"] for p in tops["results"]} == {"T1", "T3"}
    assert storefront.get("/api/v1/products/", {"category": "hats"}).status_code == 400
    assert storefront.get("/api/v1/products/", {"page": 99}).status_code == 404
    detail = storefront.get("/api/v1/products/P1/")
    assert detail.json()["category"] == "Trousers" and detail["ETag"]


def test_the_product_list_checks_its_parameters_as_its_schema_says(handmade_shop, storefront):
    """Every parameter validated (DRF's paginator silently ignored a bad page_size), an absent
    in_stock meaning both, an empty category meaning all."""
    Product.objects.filter(sku="P1").update(in_stock=False)

    def listed(params: dict) -> set[str]:
        response = storefront.get("/api/v1/products/", {"page_size": 100, **params})
        assert response.status_code == 200, response.content
        return {p["sku"] for p in response.json()["results"]}

    assert listed({}) == listed({"category": ""}) == set(handmade_shop.products)
    assert listed({"in_stock": "false"}) == {"P1"}
    assert "P1" not in listed({"in_stock": "true"})
    assert listed({"q": "p1"}) == {"P1"}
    for params, field in [
        ({"page_size": "null"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"in_stock": "1"}, "in_stock"),
    ]:
        error = error_of(storefront.get("/api/v1/products/", params))
        assert error["code"] == "invalid_parameters" and field in error["details"], params


# --- Events and click-through rates ---------------------------------------------------------


def test_events_are_recorded_against_the_answering_version(handmade_shop, storefront):
    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    seen = storefront.post(
        "/api/v1/events/",
        {"rec_id": rec_id, "type": "impression", "skus": ["P1", "S1", "B1"]},
        format="json",
    )
    assert seen.status_code == 201 and seen.json() == {"recorded": 3, "duplicate": False}
    storefront.post(
        "/api/v1/events/", {"rec_id": rec_id, "type": "click", "skus": ["P1"]}, format="json"
    )
    events = RecommendationEvent.objects.all()
    assert events.count() == 4
    assert {e.model_version_id for e in events} == {handmade_shop.version.pk}
    assert {e.api_key_id for e in events} == {storefront.api_key.pk}
    from outfits.events import click_through_rates

    by_category = {r.label: r for r in click_through_rates("category")}
    assert (by_category["Trousers"].impressions, by_category["Trousers"].clicks) == (1, 1)
    assert by_category["Shoes"].rate == 0.0
    by_version = click_through_rates("model_version")
    assert [(r.label, r.impressions, r.clicks) for r in by_version] == [("handmade-1", 3, 1)]


def post_event(client, rec_id: str, skus: list[str], kind: str = "click", **more):
    body = {"rec_id": rec_id, "type": kind, "skus": skus, **more}
    return client.post("/api/v1/events/", body, format="json")


def test_events_count_for_every_answer_that_issues_a_rec_id(handmade_shop, storefront):
    look = storefront.post("/api/v1/outfits/complete/", {"skus": ["T1"]}, format="json").json()
    items = [item["sku"] for item in look["items"]]
    assert post_event(storefront, look["rec_id"], items, "impression").status_code == 201
    assert post_event(storefront, look["rec_id"], ["T1"]).status_code == 400  # the anchor
    matches = storefront.get(MATCHES.format("T1"), {"limit": 1}).json()
    (shown,) = [g["matches"][0]["sku"] for g in matches["groups"] if g["category"] == "Bags"]
    Product.objects.filter(sku=shown).update(active=False)  # it was shown: it still counts
    assert post_event(storefront, matches["rec_id"], [shown]).status_code == 201
    assert RecommendationEvent.objects.count() == len(items) + 1


def test_a_forged_rec_id_is_refused(handmade_shop, storefront, settings):
    rec_id = storefront.get(MATCHES.format("T1"), {"limit": 1}).json()["rec_id"]
    version, issued, _, mac = rec_id.split(".")
    every_product = encode_pks(p.pk for p in handmade_shop.products.values())
    forged = [
        f"{version}.{issued}.{every_product}.{mac}",  # more products under the real MAC
        f"{int(version) + 1}.{rec_id.partition('.')[2]}",  # another version
        rec_id[:-2] + ("AA" if not rec_id.endswith("AA") else "BB"),  # another MAC
        "nonsense",
        f"{handmade_shop.version.pk}-0123456789abcdef",  # the old unsigned form
    ]
    ours = settings.SECRET_KEY
    settings.SECRET_KEY = "an attacker's guess"
    forged.append(issue_rec_id(handmade_shop.version.pk, every_product))  # another key's MAC
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = ours, ["an attacker's guess"]
    assert post_event(storefront, forged[-1], ["T2"]).status_code == 201  # a rotated-out key
    settings.SECRET_KEY_FALLBACKS = []
    RecommendationEvent.objects.all().delete()
    for rec_id in forged:
        response = post_event(storefront, rec_id, ["P1"])
        assert response.status_code == 400, rec_id
        assert "rec_id is not one this API gave out" in error_of(response)["message"]
    assert not RecommendationEvent.objects.exists()


def test_a_sku_the_answer_did_not_show_is_refused_alike_whether_it_exists_or_not(
    handmade_shop, storefront
):
    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    Product.objects.filter(sku="T3").update(active=False)
    messages = {}
    # Unknown, inactive, active but not shown (T1's own category), the anchor itself.
    for sku in ["NOPE", "T3", "T2", "T1"]:
        response = post_event(storefront, rec_id, ["P1", sku])
        assert response.status_code == 400, sku
        messages[sku] = error_of(response)["message"].replace(sku, "<sku>")
    assert set(messages.values()) == {
        "events: SKU(s) not shown by the answer with this rec_id: <sku>."
    }
    assert not RecommendationEvent.objects.exists()  # P1, shown, is not recorded either


def test_an_expired_rec_id_is_refused(handmade_shop, storefront, settings):
    settings.OUTFITS_REC_ID_MAX_AGE_DAYS = 30
    shown = encode_pks([handmade_shop["P1"].pk])
    version = handmade_shop.version.pk
    day = 86_400
    old = issue_rec_id(version, shown, now=time.time() - 31 * day)
    response = post_event(storefront, old, ["P1"])
    assert response.status_code == 400
    assert "rec_id expired" in error_of(response)["message"]
    assert "30 days" in error_of(response)["message"]
    recent = issue_rec_id(version, shown, now=time.time() - 29 * day)
    assert post_event(storefront, recent, ["P1"]).status_code == 201
    future = issue_rec_id(version, shown, now=time.time() + day)
    assert post_event(storefront, future, ["P1"]).status_code == 400


def test_a_retried_call_with_the_same_event_id_counts_once(handmade_shop, storefront):
    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    event_id = str(uuid.uuid4())
    first = post_event(storefront, rec_id, ["P1", "S1"], "impression", event_id=event_id)
    assert first.status_code == 201 and first.json() == {"recorded": 2, "duplicate": False}
    retry = post_event(storefront, rec_id, ["P1", "S1"], "impression", event_id=event_id)
    assert retry.status_code == 200 and retry.json() == {"recorded": 0, "duplicate": True}
    assert RecommendationEvent.objects.count() == 2
    # Another call, and the same id from another storefront's key, are their own.
    assert post_event(storefront, rec_id, ["P1"], event_id=str(uuid.uuid4())).status_code == 201
    _, other_key = create_api_key("other")
    other = APIClient(HTTP_AUTHORIZATION=f"Api-Key {other_key}")
    assert post_event(other, rec_id, ["P1"], event_id=event_id).json()["duplicate"] is False
    assert RecommendationEvent.objects.count() == 4
    too_long = post_event(storefront, rec_id, ["P1"], event_id="x" * 65)
    assert too_long.status_code == 400 and "event_id: " in error_of(too_long)["message"]


def test_receipts_older_than_a_rec_id_lives_are_forgotten(
    handmade_shop, storefront, settings, monkeypatch
):
    """A retry later than OUTFITS_REC_ID_MAX_AGE_DAYS carries an expired rec_id: its receipt
    guards nothing, and receipts would otherwise pile up for ever."""
    settings.OUTFITS_REC_ID_MAX_AGE_DAYS = 30
    monkeypatch.setattr(events, "_last_receipt_sweep", None)  # this process never swept
    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    for event_id in ["old", "recent"]:
        post_event(storefront, rec_id, ["P1"], event_id=event_id)
    now = timezone.now()
    EventReceipt.objects.filter(event_id="old").update(created_at=now - timedelta(days=31))
    EventReceipt.objects.filter(event_id="recent").update(created_at=now - timedelta(days=29))
    monkeypatch.setattr(events, "_last_receipt_sweep", None)
    post_event(storefront, rec_id, ["P1"], event_id="new")
    assert set(EventReceipt.objects.values_list("event_id", flat=True)) == {"recent", "new"}
    # At most once an hour per process: the next receipt does not sweep again.
    EventReceipt.objects.filter(event_id="recent").update(created_at=now - timedelta(days=31))
    post_event(storefront, rec_id, ["P1"], event_id="newer")
    assert EventReceipt.objects.filter(event_id="recent").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_event_id_count_once(handmade_shop, storefront):
    from django.db import connection

    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    start = threading.Barrier(4)

    def send(_: int) -> int:
        client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {storefront.raw_key}")
        try:
            start.wait()
            return post_event(client, rec_id, ["P1", "S1"], event_id="retry-me").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(send, range(4)))
    assert statuses == [200, 200, 200, 201]
    assert RecommendationEvent.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"rec_id": "nonsense", "type": "click", "skus": ["P1"]}, "is not one this API gave out"),
        ({"type": "purchase", "skus": ["P1"]}, "type: "),
        ({"type": "click", "skus": []}, "skus: "),
        ({"rec_id": "x" * 20_001, "type": "click", "skus": ["P1"]}, "rec_id: "),
    ],
)
def test_bad_events_are_400_and_record_nothing(handmade_shop, storefront, body, says):
    rec_id = storefront.get(MATCHES.format("T1")).json()["rec_id"]
    response = storefront.post("/api/v1/events/", {"rec_id": rec_id, **body}, format="json")
    assert response.status_code == 400 and says in error_of(response)["message"]
    assert not RecommendationEvent.objects.exists()


# --- Schema ---------------------------------------------------------------------------------


def test_the_openapi_schema_validates_and_documents_every_endpoint(db, tmp_path, client):
    output = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(output))
    schema = output.read_text()
    for path in [
        "/api/v1/products/{sku}/matches/",
        "/api/v1/outfits/complete/",
        "/api/v1/matches/by-image/",
        "/api/v1/events/",
        "/api/v1/products/",
        "/api/v1/imports/",
    ]:
        assert f"  {path}:" in schema, path
    assert "ApiKey" in schema and "examples:" in schema
    # Every endpoint needs credentials and may refuse them for a while: all say so.
    for path, operations in yaml.safe_load(schema)["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403", "429"} <= operation["responses"].keys(), (method, path)
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()  # served from our static files
    assert client.get("/api/redoc/").status_code == 200
