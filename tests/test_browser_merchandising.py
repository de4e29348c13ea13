"""In a real browser (Debian's chromium driven by Playwright), on the real database, web server
and Celery worker: a stylist calls a shown match a bad pair on the product page and finds it
among the disagreements; staff export every product's matches (written by the worker, then
downloaded), read the assortment gaps, and start an A/B test of two versions. Screenshots are
kept in test-artifacts/."""

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Product
from embeddings.models import ModelVersion
from outfits.models import Experiment, PairVerdict
from tests.support import ARTIFACTS, CHROMIUM, chromium_page

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test)"),
]


def log_in(page, web_server: str, next_url: str) -> None:
    page.goto(f"{web_server}/admin/login/?next={next_url}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a-long-password")
    page.click("input[type=submit]")


def test_staff_judge_pairs_export_matches_and_read_the_gaps(
    site_env, small_catalog, web_server, start_worker
):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=2, unfreeze_blocks=0)
    call_command("train", epochs=3, unfreeze_blocks=0)  # a second version, for the A/B test
    candidate = ModelVersion.objects.filter(is_active=False).first()
    get_user_model().objects.create_superuser("staff", "staff@example.com", "a-long-password")
    product = Product.objects.filter(outfit_items__isnull=False).first()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with chromium_page() as page:
        log_in(page, web_server, product.get_absolute_url())
        first_match = page.locator(".grid.row [role=listitem]").first
        judged_sku = first_match.locator("input[name=match]").input_value()
        first_match.locator("input[name=note]").fill("the colours fight")
        first_match.locator("button[value=bad]").click()
        page.wait_for_selector("button[value=bad][aria-pressed=true]")
        page.screenshot(path=str(ARTIFACTS / "product-page-stylist-verdict.png"), full_page=True)

        page.goto(f"{web_server}/admin/outfits/pairverdict/")
        page.click("text=Disagreements")
        page.wait_for_selector("text=the colours fight")
        page.screenshot(path=str(ARTIFACTS / "admin-disagreements.png"), full_page=True)

        page.goto(f"{web_server}/admin/")
        page.click("text=Export every product's matches")
        page.select_option("#id_format", "csv")
        page.click("text=Start the export")
        # No worker yet: the export is listed as waiting, and the page reloads itself.
        page.wait_for_selector("table.export-files >> text=queued: waiting for a worker")
        assert page.locator('meta[http-equiv="refresh"]').count() == 1
        start_worker("exports", queue=site_env["OUTFITS_EXPORT_QUEUE"])
        download_link = page.locator("table.export-files a", has_text="Download")
        download_link.wait_for(timeout=120_000)  # the page reloads itself until it is written
        page.screenshot(path=str(ARTIFACTS / "admin-export-matches.png"), full_page=True)
        with page.expect_download() as download:
            download_link.first.click()
        text = Path(download.value.path()).read_text(encoding="utf-8")

        page.goto(f"{web_server}/admin/")
        page.click("text=Assortment gaps")
        page.wait_for_selector("text=Thin complements")
        page.screenshot(path=str(ARTIFACTS / "admin-assortment-gaps.png"), full_page=True)
        gap_rows = page.locator("table.gap-rows tbody tr").count()

        page.goto(f"{web_server}/admin/outfits/experiment/add/")
        page.fill("#id_name", "three epochs against two")
        page.select_option("#id_version_b", str(candidate.pk))
        page.fill("#id_share_b", "0.5")
        page.click("input[name=_save]")
        page.click("text=three epochs against two")
        page.wait_for_selector("text=Too little data")
        page.screenshot(path=str(ARTIFACTS / "admin-experiment.png"), full_page=True)

    verdict = PairVerdict.objects.get()
    assert (verdict.product_id, verdict.match.sku) == (product.pk, judged_sku)
    assert verdict.verdict == "bad" and verdict.note == "the colours fight"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["sku"] for r in rows} <= set(Product.objects.values_list("sku", flat=True))
    assert len({r["sku"] for r in rows}) > 10 and all(r["rec_id"] for r in rows)
    assert gap_rows >= 1
    experiment = Experiment.objects.get()
    assert experiment.status == "running" and experiment.version_b == candidate
    assert experiment.version_a == ModelVersion.objects.get(is_active=True)
