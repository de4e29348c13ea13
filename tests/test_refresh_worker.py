"""Refreshes in the deployed shape: an import by another process enqueues a refresh of the
active version on the broker (Redis), a real Celery worker runs it on the test's PostgreSQL,
and the API serves the newcomers' learned matches; a worker killed mid-refresh leaves the
served version whole, and the next refresh takes over."""

import csv
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from embeddings.models import ModelVersion, VersionRefresh
from embeddings.version_refresh import refresh_active_version
from tests.support import wait_for

pytestmark = pytest.mark.services
MATCHES = "/api/v1/products/{}/matches/"


@pytest.fixture
def serving(site_env, small_catalog) -> ModelVersion:
    """The small shop, trained in this process, its version active."""
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=2, unfreeze_blocks=0)
    return ModelVersion.objects.get(is_active=True)


def copies(small_catalog, count: int) -> tuple[Path, list[str]]:
    """A catalog CSV of `count` new products, each looking like one of the catalog's."""
    with small_catalog.products_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    path = small_catalog.products_csv.parent / f"new-{uuid.uuid4().hex[:8]}.csv"
    new = [rows[n % len(rows)] | {"sku": f"NEW{n:04d}"} for n in range(count)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(new)
    return path, [row["sku"] for row in new]


def import_elsewhere(manage_py, site_env, path: Path) -> None:
    """The import as a merchandiser's upload runs it: another process, on the broker."""
    refreshing = {"OUTFITS_REFRESH_ON_CHANGE": "true", "OUTFITS_REFRESH_DELAY_SECONDS": "0.2"}
    manage_py(site_env | refreshing, "import_catalog", str(path))


def visible_directories(settings) -> set[str]:
    return {p.name for p in Path(settings.OUTFITS_MODEL_DIR).iterdir() if p.name[0] != "."}


def test_an_import_elsewhere_is_refreshed_in_by_a_worker(
    serving, site_env, small_catalog, start_worker, worker_log, manage_py, storefront
):
    start_worker(queue=site_env["OUTFITS_REFRESH_QUEUE"])
    path, (newcomer,) = copies(small_catalog, 1)
    import_elsewhere(manage_py, site_env, path)

    refresh = wait_for(
        lambda: VersionRefresh.objects.exclude(status="running").first(), "the refresh", 120
    )
    assert refresh.status == "succeeded", f"{refresh.message}\n{worker_log()[-3000:]}"
    assert refresh.added == 1 and "embeddings.tasks.refresh_version[" in worker_log()
    data = storefront.get(MATCHES.format(newcomer), {"limit": 6}).json()
    assert data["in_model"] and not data["matches_pending"] and data["groups"]


def test_a_worker_killed_mid_refresh_leaves_the_served_version_whole(
    serving, site_env, small_catalog, start_worker, manage_py, storefront, settings
):
    settings.OUTFITS_TRAINING_STALE_SECONDS = 3  # the next refresh's patience with a silent one
    settings.OUTFITS_REFRESH_ON_CHANGE = True  # as the web processes of such a site have it
    before = visible_directories(settings)
    worker = start_worker(queue=site_env["OUTFITS_REFRESH_QUEUE"])
    path, newcomers = copies(small_catalog, 400)
    import_elsewhere(manage_py, site_env, path)
    running = wait_for(
        lambda: VersionRefresh.objects.filter(status="running", embedded__gt=0).first(),
        "the refresh to be embedding",
        120,
    )
    os.killpg(worker.pid, signal.SIGKILL)  # no chance to clean up
    worker.wait()
    running.refresh_from_db()
    assert running.status == "running" and running.embedded < len(newcomers)

    # Served as before: the same directory, no new one visible, the newcomers not in it.
    assert ModelVersion.objects.get(is_active=True).directory == serving.directory
    assert visible_directories(settings) == before
    data = storefront.get(MATCHES.format(newcomers[0])).json()
    assert not data["in_model"] and data["matches_pending"]

    time.sleep(3.5)  # its heartbeat goes stale
    refresh = refresh_active_version()
    assert refresh.status == "succeeded" and refresh.added == len(newcomers)
    running.refresh_from_db()
    assert running.status == "failed" and "stopped sending heartbeats" in running.message
    hidden = [p.name for p in Path(settings.OUTFITS_MODEL_DIR).iterdir() if p.name[0] == "."]
    assert hidden == []  # the killed one's half-written files are gone
    assert storefront.get(MATCHES.format(newcomers[0])).json()["in_model"]
