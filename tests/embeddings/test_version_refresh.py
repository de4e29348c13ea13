"""The active version refreshed with new arrivals, without retraining: they are embedded by its
own pipeline, get learned matches, and enter existing products' matches; removed products
leave; the version serves the refreshed directory from the next request."""

import csv
import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product
from embeddings.engine.index import VECTORS_FILE
from embeddings.loaded_versions import active_compatibility_index
from embeddings.models import VersionRefresh
from embeddings.version_refresh import (
    FINGERPRINT_CHANGES_FILE,
    FINGERPRINTS_FILE,
    Fingerprints,
    RefreshBusy,
    fingerprint,
    refresh_active_version,
)

MATCHES = "/api/v1/products/{}/matches/"


def import_copies(small_catalog, skus: list[str]) -> list[str]:
    """Import new products that look exactly like `skus` (same image and words), under new
    SKUs; returns those."""
    with small_catalog.products_csv.open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["sku"] in skus]
    copies = small_catalog.products_csv.parent / f"new-{uuid.uuid4().hex[:8]}.csv"
    with copies.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(row | {"sku": f"NEW-{row['sku']}"})
    call_command("import_catalog", str(copies))
    return [f"NEW-{row['sku']}" for row in rows]


def same_words(model: Product, **fields) -> Product:
    """A new product described in `model`'s words (title, category, colour, attributes)."""
    words = {"title": model.title, "category": model.category, "colour": model.colour}
    return Product.objects.create(**words, attributes=model.attributes, **fields)


def matched(storefront, sku: str) -> tuple[bool, list[str]]:
    data = storefront.get(MATCHES.format(sku), {"limit": 9}).json()
    return data["in_model"], [m["sku"] for g in data["groups"] for m in g["matches"]]


def test_new_arrivals_get_learned_matches_both_ways_without_a_retrain(
    trained_shop, small_catalog, storefront, client, admin_client, settings
):
    settings.OUTFITS_MATCH_DIVERSITY = 0  # a copy is a near-duplicate: keep it in the row
    _, index = active_compatibility_index()
    # An existing product shown in another's matches: its copy must be shown there too.
    anchor = index.skus[0]
    original = matched(storefront, anchor)[1][0]
    # Requested when the import commits (which this test's transaction never does): pending.
    settings.OUTFITS_REFRESH_ON_CHANGE = True
    (newcomer,) = import_copies(small_catalog, [original])
    data = storefront.get(MATCHES.format(newcomer)).json()
    assert (data["in_model"], data["matches_pending"], data["groups"]) == (False, True, [])
    page = client.get(f"/products/{newcomer}/")
    assert b"its matches are being prepared" in page.content

    refresh = refresh_active_version()

    assert refresh.status == "succeeded", refresh.message
    assert (refresh.added, refresh.changed, refresh.removed) == (1, 0, 0)
    # Where its time went, stage by stage, within its seconds.
    stages = dict(refresh.stages)
    assert [stage for stage, _ in refresh.stages] == ["reading", "embedding", "lists", "writing"]
    assert 0 < sum(stages.values()) <= refresh.seconds + 0.005 * len(stages)  # each rounded
    version, index = active_compatibility_index()
    assert version.directory == refresh.directory == f"{version.name}.r{refresh.pk}"
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.pk]))
    assert f"embedding {stages['embedding']:.1f}" in page.content.decode()
    # Embedded by the version's own pipeline: the vector its training gave the original, to
    # float tolerance (one image at a time here, in batches there; tokens cached in float16).
    np.testing.assert_allclose(
        index.vectors[index.row_of_sku[newcomer]],
        index.vectors[index.row_of_sku[original]],
        atol=1e-3,
    )
    assert storefront.get(MATCHES.format(newcomer)).json()["matches_pending"] is False
    in_model, own = matched(storefront, newcomer)
    # Its own learned matches (not the original's: no stylist put the newcomer in an outfit,
    # so no curated partner lifts any of them).
    assert in_model and len(own) >= 9 and newcomer not in own
    assert newcomer in matched(storefront, anchor)[1]

    # Taken away: out of every list, and the refresh says so.
    Product.objects.filter(sku=newcomer).update(active=False)
    again = refresh_active_version()
    assert (again.added, again.changed, again.removed) == (0, 0, 1)
    assert [stage for stage, _ in again.stages] == ["reading", "lists", "writing"]  # none embedded
    _, index = active_compatibility_index()
    assert newcomer not in index.row_of_sku and newcomer not in matched(storefront, anchor)[1]
    # Written whole (a row was removed): no layer of the refresh before laid over it.
    assert len(index.vectors) == len(index.neighbours) == len(index.skus)
    assert not any(
        name.endswith(".rows.npy") for name in os.listdir(index.layers[VECTORS_FILE].base.parent)
    )
    assert refresh_active_version().message == "nothing changed"


def test_a_changed_image_is_embedded_again_and_nothing_else_is(trained_shop):
    _, before = active_compatibility_index()
    first, second = before.skus[0], before.skus[-1]
    other = Product.objects.get(sku=second)
    Product.objects.filter(sku=first).update(
        image=other.image.name, image_sha256=other.image_sha256
    )
    refresh = refresh_active_version()
    assert (refresh.added, refresh.changed, refresh.removed) == (0, 1, 0)
    _, after = active_compatibility_index()
    assert after.skus == before.skus
    changed = after.row_of_sku[first]
    assert not np.allclose(after.vectors[changed], before.vectors[changed], atol=1e-3)
    unchanged = np.arange(len(after.skus)) != changed
    np.testing.assert_array_equal(after.vectors[unchanged], before.vectors[unchanged])


def test_a_refresh_writes_the_fingerprints_that_changed_beside_its_versions(trained_shop, settings):
    """The trained version's fingerprints file linked, the changes since beside it (a 1M
    catalog's fingerprints are not written again by every refresh); read back, every active
    product's fingerprint, as a whole file would give them."""
    root = Path(settings.OUTFITS_MODEL_DIR)
    trained = root / trained_shop.directory
    _, index = active_compatibility_index()
    first, second = index.skus[0], index.skus[-1]
    Product.objects.filter(sku=first).update(title="A new title")
    changed = refresh_active_version()
    Product.objects.filter(sku=second).update(active=False)
    removed = refresh_active_version()
    assert (changed.changed, removed.removed) == (1, 1)
    for refresh in (changed, removed):
        directory = root / refresh.directory
        linked = os.stat(directory / FINGERPRINTS_FILE).st_ino
        assert linked == os.stat(trained / FINGERPRINTS_FILE).st_ino
    changes = json.loads((directory / FINGERPRINT_CHANGES_FILE).read_text())
    assert list(changes["products"]) == [first] and changes["removed"] == [second]
    read = Fingerprints.read(directory)
    expected = {p.sku: fingerprint(p) for p in Product.objects.filter(active=True)}
    assert read.known == expected and read.as_of == tuple(removed.catalog_as_of)


def test_one_refresh_of_a_version_at_a_time(trained_shop):
    beat = timezone.now()
    VersionRefresh.objects.create(version=trained_shop, worker="elsewhere", heartbeat_at=beat)
    with pytest.raises(RefreshBusy, match="running"):
        refresh_active_version()
    # Its worker silent past the stale limit: failed, and this one runs.
    VersionRefresh.objects.update(heartbeat_at=beat - timedelta(hours=1))
    assert refresh_active_version().status == "succeeded"
    assert VersionRefresh.objects.filter(status="failed", worker="elsewhere").exists()


def test_an_import_refreshes_the_active_version_when_it_commits(
    trained_shop, small_catalog, storefront, settings, django_capture_on_commit_callbacks
):
    settings.OUTFITS_REFRESH_ON_CHANGE = True  # in-process tasks: the refresh runs at commit
    _, index = active_compatibility_index()
    with django_capture_on_commit_callbacks(execute=True):
        (newcomer,) = import_copies(small_catalog, [index.skus[3]])
    assert VersionRefresh.objects.get().added == 1
    in_model, own = matched(storefront, newcomer)
    assert in_model and own


def test_a_new_image_saved_in_the_admin_is_refreshed_in(
    trained_shop, admin_client, settings, django_capture_on_commit_callbacks
):
    settings.OUTFITS_REFRESH_ON_CHANGE = True
    _, before = active_compatibility_index()
    product, other = (
        Product.objects.get(sku=before.skus[0]),
        Product.objects.get(sku=before.skus[-1]),
    )
    form = {
        "sku": product.sku,
        "title": product.title,
        "category": product.category_id,
        "colour": product.colour,
        "price": product.price or "",
        "in_stock": "on",
        "active": "on",
        "attributes": json.dumps(product.attributes),
        "image": SimpleUploadedFile("new.png", other.image.read(), "image/png"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:catalog_product_change", args=[product.pk]), form
        )
    assert response.status_code == 302, response.content[:2000]
    refresh = VersionRefresh.objects.get()
    assert (refresh.added, refresh.changed, refresh.removed) == (0, 1, 0), refresh.message
    _, after = active_compatibility_index()
    row = after.row_of_sku[product.sku]
    assert not np.allclose(after.vectors[row], before.vectors[row], atol=1e-3)


def test_a_product_without_a_picture_is_matched_from_its_words(
    trained_shop, storefront, client, settings
):
    _, index = active_compatibility_index()
    model = Product.objects.get(sku=index.skus[0])
    same_words(model, sku="WORDS-1")
    settings.OUTFITS_REFRESH_ON_CHANGE = True  # refreshed in, from its words: pending until then
    assert storefront.get(MATCHES.format("WORDS-1")).json()["matches_pending"]
    refresh = refresh_active_version()
    assert (refresh.added, refresh.changed, refresh.removed) == (1, 0, 0)
    data = storefront.get(MATCHES.format("WORDS-1")).json()
    assert data["in_model"] and data["from_words"] and data["groups"]
    assert not storefront.get(MATCHES.format(model.sku)).json()["from_words"]
    page = client.get("/products/WORDS-1/")
    assert b"Matched from its description" in page.content


def test_a_category_new_to_the_model_is_matched_as_the_known_one_it_looks_like(
    trained_shop, storefront
):
    from catalog.models import Category

    _, before = active_compatibility_index()
    model = Product.objects.get(sku=before.skus[0])
    sneakers = Category.objects.create(name="Sneakers", group=model.category.group)
    Product.objects.create(
        sku="SNEAKER-1",
        title=model.title,
        category=sneakers,
        image=model.image.name,
        image_sha256=model.image_sha256,
    )
    refresh = refresh_active_version()
    assert refresh.added == 1, refresh.message
    _, after = active_compatibility_index()
    known = after.category_fallbacks["Sneakers"]
    assert known in before.indexes
    assert after.complements["Sneakers"] == before.complements_of(known)
    data = storefront.get(MATCHES.format("SNEAKER-1")).json()
    assert data["in_model"] and data["category_fallback"] == known and data["groups"]
    # Offered where the known category is: in the matches rows of its complements.
    offered = [c for c, others in after.complements.items() if "Sneakers" in others]
    assert offered and all(known in after.complements[c] for c in offered)
    anchor = after.skus[after.rows_of_category[offered[0]][0]]
    assert after.nearest(anchor, "Sneakers", 3)[0][0] == "SNEAKER-1"


def test_an_activation_refreshes_in_what_arrived_while_its_version_trained(
    trained_shop, small_catalog, settings, django_capture_on_commit_callbacks
):
    from embeddings.versions import activate

    settings.OUTFITS_REFRESH_ON_CHANGE = True
    # Arrived after the version embedded the catalog (during its training, say).
    (newcomer,) = import_copies(small_catalog, [active_compatibility_index()[1].skus[2]])
    with django_capture_on_commit_callbacks(execute=True):
        activate(trained_shop)
    assert VersionRefresh.objects.get().added == 1
    assert newcomer in active_compatibility_index()[1].row_of_sku


def test_a_refresh_of_a_version_no_longer_active_is_dropped(
    trained_shop, small_catalog, settings, monkeypatch
):
    from embeddings import version_refresh
    from embeddings.models import ModelVersion
    from embeddings.versions import activate

    settings.OUTFITS_ACTIVATION_MARGIN = 10.0  # the second training stays inactive
    call_command("train", epochs=1, unfreeze_blocks=0)
    other = ModelVersion.objects.get(is_active=False)
    import_copies(small_catalog, [active_compatibility_index()[1].skus[2]])
    real = version_refresh.refreshed

    def activated_meanwhile(*args, **kwargs):
        index = real(*args, **kwargs)
        activate(other)  # staff activate another version while this refresh runs
        return index

    monkeypatch.setattr(version_refresh, "refreshed", activated_meanwhile)
    refresh = refresh_active_version()
    assert refresh.status == "dropped" and refresh.message == "no longer the active version"
    trained_shop.refresh_from_db()
    assert trained_shop.directory == trained_shop.name  # never pointed at the refresh
    assert not (settings.OUTFITS_MODEL_DIR / f"{trained_shop.name}.r{refresh.pk}").exists()


def test_a_refresh_reads_the_catalogs_change_log_and_the_whole_catalog_when_they_disagree(
    trained_shop,
):
    from django.db import connection

    _, index = active_compatibility_index()
    logged, unlogged, gone = index.skus[1], index.skus[2], index.skus[3]
    Product.objects.filter(sku=logged).update(title="A title the log names")
    with connection.cursor() as cursor:  # a write the change log never hears of
        cursor.execute("UPDATE catalog_product SET title = 'unlogged' WHERE sku = %s", [unlogged])
    refresh = refresh_active_version()
    # Only the logged product was looked at: the work follows the log, not the catalog.
    assert (refresh.added, refresh.changed, refresh.removed) == (0, 1, 0)

    # Counts that disagree with the log (an unlogged deactivation): the whole catalog is
    # compared, and the earlier unlogged change is found too.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET active = false WHERE sku = %s", [gone])
    again = refresh_active_version()
    assert (again.added, again.changed, again.removed) == (0, 1, 1)
    assert again.catalog_as_of and again.catalog_as_of[0] >= refresh.catalog_as_of[0]


def test_an_unreadable_image_is_matched_from_words_and_tried_again(trained_shop, storefront):
    from django.conf import settings

    _, index = active_compatibility_index()
    model = Product.objects.get(sku=index.skus[0])
    broken = settings.MEDIA_ROOT / "products" / "broken.png"
    broken.write_bytes(b"not an image")
    same_words(model, sku="BROKEN-1", image="products/broken.png", image_sha256="0" * 64)
    refresh = refresh_active_version()
    assert refresh.status == "succeeded" and refresh.added == 1
    assert "could not be read" in refresh.message and "BROKEN-1" in refresh.message
    data = storefront.get(MATCHES.format("BROKEN-1")).json()
    assert data["in_model"] and data["groups"]
    # Still unreadable: nothing to do. Readable again (restored from a backup, say): embedded
    # from its picture, though the catalog never changed.
    assert refresh_active_version().message == "nothing changed"
    broken.write_bytes(model.image.read())
    fixed = refresh_active_version()
    assert (fixed.changed, fixed.message) == (1, "")
    _, after = active_compatibility_index()
    np.testing.assert_allclose(
        after.vectors[after.row_of_sku["BROKEN-1"]],
        after.vectors[after.row_of_sku[model.sku]],
        atol=1e-3,
    )


def test_a_refresh_fans_its_embedding_out_when_a_queue_is_named(
    trained_shop, small_catalog, settings
):
    from celery.signals import task_prerun

    settings.OUTFITS_FANOUT_QUEUE = "fanout"  # in-process tasks here, as in development
    ran: list[str] = []

    def note(task=None, **_):
        ran.append(task.name)

    task_prerun.connect(note, weak=False)
    try:
        copies = import_copies(small_catalog, active_compatibility_index()[1].skus[:3])
        refresh = refresh_active_version()
    finally:
        task_prerun.disconnect(note)
    assert refresh.added == 3 and "embeddings.tasks.embed_image_chunk" in ran
    _, index = active_compatibility_index()
    for copy in copies:
        np.testing.assert_allclose(
            index.vectors[index.row_of_sku[copy]],
            index.vectors[index.row_of_sku[copy.removeprefix("NEW-")]],
            atol=1e-3,
        )


def test_a_large_version_is_loaded_beside_the_one_served(trained_shop, small_catalog, settings):
    from tests.support import wait_for

    settings.OUTFITS_MODEL_INLINE_ITEMS = 0  # every version counts as large
    served, index = active_compatibility_index()
    import_copies(small_catalog, [index.skus[1]])
    refresh = refresh_active_version()

    # The request that notices goes on with the loaded directory; a thread loads the new one.
    assert active_compatibility_index()[0].directory == served.directory
    wait_for(
        lambda: active_compatibility_index()[0].directory == refresh.directory,
        "the refreshed directory to be served",
        30,
    )


def test_a_refresh_that_cannot_write_fails_with_the_reason_and_serves_as_before(
    trained_shop, small_catalog, storefront, settings
):
    served, index = active_compatibility_index()
    (newcomer,) = import_copies(small_catalog, [index.skus[1]])
    settings.OUTFITS_MODEL_DIR_MIN_FREE_MB = 2**40  # more than any disk has: as if it were full
    with pytest.raises(Exception, match="MB free"):
        refresh_active_version()
    failed = VersionRefresh.objects.get()
    assert failed.status == "failed" and "was not refreshed and serves as before" in failed.message
    assert active_compatibility_index()[0].directory == served.directory
    assert storefront.get(MATCHES.format(index.skus[1])).json()["groups"]  # still answering

    settings.OUTFITS_MODEL_DIR_MIN_FREE_MB = 0  # space freed: the next refresh takes it in
    assert refresh_active_version().added == 1
    assert matched(storefront, newcomer)[0]


def test_a_damaged_refresh_is_not_served_and_not_retried_on_every_request(
    trained_shop, small_catalog, settings, storefront, caplog
):
    from embeddings import loaded_versions
    from embeddings.engine.index import VECTORS_FILE
    from tests.support import wait_for

    settings.OUTFITS_MODEL_INLINE_ITEMS = 0  # loaded beside, in a thread
    served, index = active_compatibility_index()
    import_copies(small_catalog, [index.skus[1]])
    refresh = refresh_active_version()
    damaged = settings.OUTFITS_MODEL_DIR / refresh.directory / VECTORS_FILE
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit of a vector: its checksum no longer matches
    damaged.write_bytes(bytes(data))

    assert active_compatibility_index()[0].directory == served.directory
    wait_for(lambda: loaded_versions.serving_index.failed_loads, "the load to fail", 30)
    for _ in range(5):  # the served version answers; no new attempt for a while
        assert active_compatibility_index()[0].directory == served.directory
        assert storefront.get(MATCHES.format(index.skus[2])).status_code == 200
    wait_for(lambda: not loaded_versions.serving_index.lock.locked(), "no load under way", 30)
    failures = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failures) == 1 and "still serving" in failures[0].getMessage()
