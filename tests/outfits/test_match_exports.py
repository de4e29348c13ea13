"""Matches outside the site: the storefront's filters (exclude, attributes, boosts), the batch
endpoint, the paged walk of the whole catalog, `manage.py export_matches` and the admin's
download: all on the real database and a real model version (the hand-made shop)."""

import csv
import io
import json
import os
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from catalog.models import Product
from outfits.rec_ids import verify_rec_id

MATCHES = "/api/v1/products/{}/matches/"
BATCH = "/api/v1/matches/batch/"
PAGES = "/api/v1/matches/"


def rows(data: dict) -> dict[str, list[str]]:
    return {g["category"]: [m["sku"] for m in g["matches"]] for g in data["groups"]}


@pytest.fixture
def backend(db):
    """A storefront's back-end: its key has no allowed origins (server-to-server only)."""
    from rest_framework.test import APIClient

    from outfits.api_keys import create_api_key

    _, raw_key = create_api_key("Back-end", [])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def by_score(settings):
    """Rows ranked by score alone, so a test reads the order the scores make."""
    settings.OUTFITS_MATCH_DIVERSITY = 0


# --- Filters ------------------------------------------------------------------------------


def test_excluded_skus_are_never_shown(handmade_shop, storefront):
    before = rows(storefront.get(MATCHES.format("T1")).json())
    assert "P1" in before["Trousers"] and "S1" in before["Shoes"]
    after = rows(storefront.get(MATCHES.format("T1"), {"exclude": "P1,S1,NOPE"}).json())
    assert "P1" not in after["Trousers"] and "S1" not in after["Shoes"]
    assert len(after["Trousers"]) == len(before["Trousers"])  # the next best fill in
    look = storefront.post(
        "/api/v1/outfits/complete/",
        {"skus": ["T1"], "categories": ["Shoes"], "exclude": "S1"},
        format="json",
    ).json()
    assert look["items"] and all(item["sku"] != "S1" for item in look["items"])


def test_attribute_filters_keep_only_products_with_those_values(handmade_shop, storefront):
    Product.objects.filter(sku="P3").update(attributes={"Gender": "Male"})
    Product.objects.filter(sku="P1").update(attributes={"Gender": "Female"})
    Product.objects.filter(sku="S2").update(attributes={"gender": "unisex"})
    male = rows(storefront.get(MATCHES.format("T1"), {"attributes": "GENDER:male"}).json())
    assert male == {"Trousers": ["P3"]}  # products without the attribute are left out too
    either = rows(
        storefront.get(MATCHES.format("T1"), {"attributes": "gender:male,gender:Unisex"}).json()
    )
    assert either == {"Trousers": ["P3"], "Shoes": ["S2"]}


def test_the_products_own_colour_is_an_attribute_too(handmade_shop, storefront, backend):
    Product.objects.filter(sku__in=["P3", "S2"]).update(colour="Navy")
    Product.objects.filter(sku="P1").update(colour="navy", attributes={"colour": "Midnight"})
    navy = rows(storefront.get(MATCHES.format("T1"), {"attributes": "colour:NAVY"}).json())
    assert navy == {"Trousers": ["P3"], "Shoes": ["S2"]}  # P1's own attribute says midnight
    both = backend.post(BATCH, {"skus": ["T1", "T2"], "attributes": "colour:navy"}, format="json")
    assert [rows(answer) for answer in both.json()["results"]][0] == navy


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"attributes": "gender"}, "attributes", "is not attribute:value"),
        ({"boost": "cheapest"}, "boost", "use new_arrivals, in_stock or attribute:value"),
        ({"exclude": ",".join(f"X{i}" for i in range(501))}, "exclude", "at most 500"),
    ],
)
def test_unreadable_filters_are_a_400_that_says_how(handmade_shop, storefront, params, field, says):
    response = storefront.get(MATCHES.format("T1"), params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters" and field in error["details"]
    assert says in error["message"]


def test_an_attribute_boost_lifts_a_product_by_the_boost(handmade_shop, storefront, by_score):
    plain = storefront.get(MATCHES.format("T1")).json()
    assert rows(plain)["Trousers"][0] == "P1"
    trousers = plain["groups"][[g["category"] for g in plain["groups"]].index("Trousers")]
    p3_score = next(m["score"] for m in trousers["matches"] if m["sku"] == "P3")
    Product.objects.filter(sku="P3").update(attributes={"line": "Premium"})
    boosted = storefront.get(MATCHES.format("T1"), {"boost": "line:premium"}).json()
    trousers = boosted["groups"][[g["category"] for g in boosted["groups"]].index("Trousers")]
    assert trousers["matches"][0]["sku"] == "P3"
    assert trousers["matches"][0]["score"] == pytest.approx(p3_score + 0.1, abs=1e-6)


def test_new_arrivals_and_in_stock_boosts(handmade_shop, storefront, by_score):
    old = timezone.now() - timedelta(days=60)
    Product.objects.exclude(sku="P3").update(created_at=old)
    newest = rows(storefront.get(MATCHES.format("T1"), {"boost": "new_arrivals"}).json())
    assert newest["Trousers"][0] == "P3"

    Product.objects.filter(sku="P1").update(in_stock=False)
    everything = {"in_stock": "false"}
    assert rows(storefront.get(MATCHES.format("T1"), everything).json())["Trousers"][0] == "P1"
    stocked = rows(storefront.get(MATCHES.format("T1"), {**everything, "boost": "in_stock"}).json())
    assert stocked["Trousers"][0] != "P1" and "P1" in stocked["Trousers"]


# --- Batch ------------------------------------------------------------------------------------


def test_the_batch_answers_each_product_as_its_own_request_would(
    handmade_shop, storefront, backend
):
    response = backend.post(BATCH, {"skus": ["S1", "T1", "GONE", "T1"], "limit": 2}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert [r["sku"] for r in data["results"]] == ["S1", "T1"]
    assert data["unknown_skus"] == ["GONE"]
    for result in data["results"]:
        single = storefront.get(MATCHES.format(result["sku"]), {"limit": 2}).json()
        assert result["groups"] == single["groups"]
        shown = {m["sku"] for g in result["groups"] for m in g["matches"]}
        answer = verify_rec_id(result["rec_id"])  # its own rec_id: events count per answer
        assert answer.product_pks == {handmade_shop[s].pk for s in shown}


def test_the_batch_takes_filters_and_refuses_more_than_100(handmade_shop, backend):
    data = backend.post(
        BATCH, {"skus": ["T1", "T2"], "category": "shoes", "exclude": "S1"}, format="json"
    ).json()
    for result in data["results"]:
        assert set(rows(result)) == {"Shoes"} and "S1" not in rows(result)["Shoes"]
    too_many = backend.post(BATCH, {"skus": [f"X{i}" for i in range(101)]}, format="json")
    assert too_many.status_code == 400
    assert "skus" in too_many.json()["error"]["details"]


# --- The whole catalog, page by page and as a file -------------------------------------------


def test_pages_walk_every_active_product_once_in_sku_order(handmade_shop, storefront, backend):
    Product.objects.filter(sku="K2").update(active=False)
    seen, url, params = [], PAGES, {"page_size": 4, "limit": 2}
    while url:
        data = backend.get(url, params).json()
        params = None  # `next` carries them
        seen += [r["sku"] for r in data["results"]]
        url = data["next"]
    active = sorted(Product.objects.filter(active=True).values_list("sku", flat=True))
    assert seen == active and "K2" not in seen
    page = backend.get(PAGES, {"after": "P4", "page_size": 1, "limit": 2}).json()
    assert page["results"][0]["sku"] == "S1"
    assert (
        page["results"][0]["groups"]
        == storefront.get(MATCHES.format("S1"), {"limit": 2}).json()["groups"]
    )


def test_export_matches_as_json_lines_and_csv(handmade_shop, tmp_path):
    Product.objects.filter(sku="P1").update(title="=HYPERLINK(evil)")
    jsonl, table = tmp_path / "m.jsonl", tmp_path / "m.csv"
    call_command("export_matches", output=str(jsonl), limit=2, base_url="https://shop.example")
    call_command("export_matches", "--format=csv", output=str(table), limit=2)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    active = sorted(Product.objects.filter(active=True).values_list("sku", flat=True))
    assert [r["sku"] for r in records] == active
    t1 = records[active.index("T1")]
    assert rows(t1)["Trousers"] == ["P1", "P3"] or rows(t1)["Trousers"][0] == "P1"
    assert t1["groups"][0]["matches"][0]["url"].startswith("https://shop.example/products/")
    assert verify_rec_id(t1["rec_id"]).model_version_id == handmade_shop.version.pk

    with table.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    from_csv = {(r["sku"], r["category"], int(r["rank"]), r["match_sku"]) for r in lines}
    from_jsonl = {
        (r["sku"], g["category"], rank, m["sku"])
        for r in records
        for g in r["groups"]
        for rank, m in enumerate(g["matches"], start=1)
    }
    assert from_csv == from_jsonl
    titles = {r["match_title"] for r in lines if r["match_sku"] == "P1"}
    assert titles == {"'=HYPERLINK(evil)"}  # a spreadsheet shows it, never runs it


def test_export_matches_refuses_bad_options_and_keeps_the_previous_file(handmade_shop, tmp_path):
    target = tmp_path / "m.jsonl"
    target.write_text("yesterday's export\n")
    with pytest.raises(CommandError, match="unknown category: hats"):
        call_command("export_matches", output=str(target), category="hats")
    with pytest.raises(CommandError, match="is not attribute:value"):
        call_command("export_matches", output=str(target), attributes="gender")
    assert target.read_text() == "yesterday's export\n"
    assert [p for p in tmp_path.iterdir() if p.is_file()] == [target]  # nothing half-written


def test_staff_start_an_export_in_the_admin_and_download_it_when_written(handmade_shop):
    merchandiser = User.objects.create_user("merch", password="pw", is_staff=True)
    client = Client()
    client.force_login(merchandiser)
    assert client.get("/admin/export-matches/").status_code == 403
    merchandiser.user_permissions.add(Permission.objects.get(codename="view_product"))
    page = client.get("/admin/export-matches/")
    assert page.status_code == 200 and b"No export yet" in page.content
    started = client.post(
        "/admin/export-matches/",
        {"format": "csv", "limit": "2", "categories": ["Shoes"], "exclude": "S1"},
        follow=True,
    )
    assert b"started" in started.content  # the worker (in-process here) wrote it
    name = re.search(rb'href="/admin/export-matches/(matches-[^"]+\.csv)"', started.content)
    assert name is not None, started.content.decode()[-2000:]
    response = client.get(f"/admin/export-matches/{name.group(1).decode()}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="matches-')
    text = b"".join(response.streaming_content).decode()
    lines = list(csv.DictReader(io.StringIO(text)))
    assert lines and {r["category"] for r in lines} == {"Shoes"}
    assert "S1" not in {r["match_sku"] for r in lines}
    assert all(r["match_url"].startswith("http://testserver/products/") for r in lines)
    refused = client.post("/admin/export-matches/", {"format": "csv", "boost": "x"})
    assert refused.status_code == 200 and b"use new_arrivals" in refused.content
    assert client.get("/admin/export-matches/..%2Fsecret.csv").status_code == 404
    anonymous = Client().get("/admin/export-matches/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_an_export_waiting_for_a_worker_is_listed_and_the_page_reloads_until_it_is_written(
    handmade_shop,
):
    """Started, the export is listed at once: before a worker takes it (a busy or slow one)
    the page said "No export yet" and stopped reloading, so the finished file never showed."""
    from outfits.exports import (
        QUEUED_AT_MOST_SECONDS,
        exports_folder,
        mark_queued,
        new_export_name,
    )
    from outfits.match_filters import InvalidFilter
    from outfits.tasks import export_matches_file

    staff = User.objects.create_superuser("staff", "staff@example.com", "pw")
    client = Client()
    client.force_login(staff)
    name = new_export_name("csv")
    mark_queued(name)  # what the page does before handing the export to the broker
    waiting = client.get("/admin/export-matches/").content.decode()
    assert f"{name}</td>" in waiting and "queued: waiting for a worker" in waiting
    assert 'http-equiv="refresh"' in waiting
    export_matches_file(name, 2, {})  # a worker takes it
    written = client.get("/admin/export-matches/").content.decode()
    assert f'href="/admin/export-matches/{name}"' in written and "queued" not in written
    assert 'http-equiv="refresh"' not in written
    assert sorted(p.name for p in exports_folder().iterdir()) == [name]  # no marker left
    # A task that fails before it writes (bad filters) leaves nothing waiting either.
    failing = new_export_name("csv")
    mark_queued(failing)
    with pytest.raises(InvalidFilter):
        export_matches_file(failing, 2, {"boost": "not a boost"})
    assert sorted(p.name for p in exports_folder().iterdir()) == [name]
    # A marker no worker took within the broker's visibility timeout is no longer listed.
    stale = new_export_name("csv")
    mark_queued(stale)
    old = time.time() - QUEUED_AT_MOST_SECONDS - 60
    os.utime(exports_folder() / f"{stale}.queued", (old, old))
    assert stale not in client.get("/admin/export-matches/").content.decode()


def test_an_export_reads_one_snapshot_and_each_products_attributes_once(
    handmade_shop, django_assert_max_num_queries
):
    from outfits.exports import export_lines
    from outfits.match_filters import MatchFilters
    from outfits.serving import current_snapshot

    Product.objects.filter(sku__in=["P3", "S2"]).update(attributes={"gender": "male"})
    current_snapshot()  # built: what follows is the export's own reading
    males = MatchFilters(attributes={"gender": frozenset({"male"})})
    # Without: a check of the catalog's changes and a read of the candidates' attributes for
    # each of the 14 products.
    with django_assert_max_num_queries(6):
        lines = list(export_lines("jsonl", filters=males))
    assert len(lines) == 14
    shown = {m["sku"] for line in lines for g in json.loads(line)["groups"] for m in g["matches"]}
    assert shown == {"P3", "S2"}


def test_browser_keys_cannot_crawl_the_whole_catalog(handmade_shop, storefront):
    """A key with allowed origins sits in public pages: the bulk endpoints refuse it."""
    for response in (
        storefront.get(PAGES),
        storefront.post(BATCH, {"skus": ["T1"]}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "browser_key_refused"
