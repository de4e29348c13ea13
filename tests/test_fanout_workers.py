"""A run's heavy work fanned out over Celery workers (OUTFITS_FANOUT_QUEUE): a training worker
sends its new images, then its version's neighbour search, in chunks to real worker processes
on the Redis broker and builds the version from what they return; a queue nobody serves, a
chunk that fails, workers that stop answering and a cancel end the run clearly, keeping
nothing."""

import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from celery import Celery
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from catalog.models import Product
from embeddings.engine.artifacts import file_sha256
from embeddings.engine.backbone import load_backbone
from embeddings.engine.encode import encode_images, encode_trunk_tokens
from embeddings.engine.index import NEIGHBOUR_DEPTH, CompatibilityIndex
from embeddings.engine.vector_cache import ImageVectorCache
from embeddings.models import ModelVersion, TrainingRun
from embeddings.training import embeddable_products, image_cache_path
from embeddings.training_runs import create_training_run
from tests.support import wait_for

pytestmark = pytest.mark.services

IMAGES_A_CHUNK = 16  # the small catalog's 56 images: 4 chunks
ITEMS_A_CHUNK = 5  # of a category, for the neighbour search


@pytest.fixture
def shop(site_env, small_catalog):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))


@pytest.fixture
def fanout_queue(site_env) -> str:
    """A queue of this test's own, named to the site's processes as their fan-out queue."""
    queue = f"fanout-test-{uuid.uuid4().hex[:8]}"
    site_env |= {
        "OUTFITS_FANOUT_QUEUE": queue,
        "OUTFITS_EMBEDDING_CHUNK": str(IMAGES_A_CHUNK),
        "OUTFITS_NEIGHBOURS_CHUNK": str(ITEMS_A_CHUNK),
    }
    return queue


def finished(run: TrainingRun) -> TrainingRun | None:
    run.refresh_from_db()
    return run if run.finished else None


def chunks_done(log: str, task: str = "embed_image_chunk") -> int:
    return len(re.findall(rf"embeddings\.tasks\.{task}\[[^\]]+\] succeeded", log))


def chunk_folders() -> list[Path]:
    folder = Path(settings.VAR_DIR) / "fanout"
    return list(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("unfrozen_blocks", [0, 1], ids=["image vectors", "trunk tokens"])
def test_a_retrain_embeds_and_searches_in_chunks_on_the_fanout_workers(
    shop, fanout_queue, start_worker, send_retrain, worker_log, unfrozen_blocks
):
    start_worker("trainer")
    start_worker("helper-1", fanout_queue)
    start_worker("helper-2", fanout_queue)
    run = create_training_run(epochs=2, unfrozen_blocks=unfrozen_blocks)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to finish")
    assert run.status == "succeeded", f"{run.message}\n{worker_log('trainer')[-3000:]}"
    assert run.model_version.is_active
    helpers = worker_log("helper-1") + worker_log("helper-2")
    assert chunks_done(helpers) == 4, helpers[-3000:]
    assert "embed_image_chunk[" not in worker_log("trainer")  # not its own work
    assert chunk_folders() == []  # the chunks' files are gone once the run has them

    # The version's neighbours, searched by the helpers a few items at a time, are the ones
    # this process computes from its files.
    version = CompatibilityIndex.load(
        Path(settings.OUTFITS_MODEL_DIR) / run.model_version.directory
    )
    chunks = sum(-(-len(rows) // ITEMS_A_CHUNK) for rows in version.rows_of_category.values())
    assert chunks_done(helpers, "compute_neighbours_chunk") == chunks > len(version.indexes)
    assert "compute_neighbours_chunk[" not in worker_log("trainer")
    np.testing.assert_array_equal(version.neighbours, version.computed_neighbours(NEIGHBOUR_DEPTH))

    # What the workers embedded, in the cache under each product's image, is what this
    # process embeds from the same files.
    products = list(embeddable_products())
    backbone = load_backbone(settings.OUTFITS_BACKBONE, settings.OUTFITS_PRETRAINED)
    identity = file_sha256(Path(settings.OUTFITS_PRETRAINED))
    paths = [Path(p.image.path) for p in products]
    if unfrozen_blocks:
        frozen = len(backbone.model.visual.transformer.resblocks) - unfrozen_blocks
        identity += f"|trunk{frozen}"
        here = encode_trunk_tokens(backbone, paths, frozen).float().numpy()
    else:
        here = encode_images(backbone, paths)
    cache = ImageVectorCache(image_cache_path(settings.OUTFITS_BACKBONE, identity))
    keys = [p.image_sha256 or p.image.name for p in products]
    fanned_out = np.stack([cache.vectors[key] for key in keys]).astype(np.float32)
    assert fanned_out.shape == here.shape
    np.testing.assert_allclose(fanned_out, here, atol=2e-2 if unfrozen_blocks else 1e-3)
    # In order: each product's nearest array from this process is its own.
    flat_out, flat_here = fanned_out.reshape(56, 1, -1), here.reshape(1, 56, -1)
    nearest = np.linalg.norm(flat_out - flat_here, axis=2).argmin(axis=1)
    assert (nearest == np.arange(56)).all()


def test_a_queue_no_worker_serves_fails_the_run_at_once_and_says_what_to_start(
    shop, fanout_queue, start_worker, send_retrain
):
    start_worker("trainer")  # and no embedding worker
    run = create_training_run(epochs=2, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to stop", timeout=120)
    assert run.status == "failed"
    assert f"No Celery worker serves the fan-out queue '{fanout_queue}'" in run.message
    assert f"celery -A outfits worker -Q {fanout_queue}" in run.message
    assert not ModelVersion.objects.exists() and chunk_folders() == []


def test_a_chunk_that_fails_fails_the_run_with_its_reason_and_keeps_nothing(
    shop, fanout_queue, start_worker, send_retrain, worker_log
):
    broken = Product.objects.order_by("pk")[20]  # in the second chunk
    Path(broken.image.path).write_bytes(b"not a picture")
    start_worker("trainer")
    start_worker("helper", fanout_queue)
    run = create_training_run(epochs=2, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to stop")
    assert run.status == "failed", run.message
    assert "Embedding images: chunk 2 of 4 failed on its worker" in run.message
    assert "cannot identify image file" in run.message and broken.image.name in run.message
    assert not ModelVersion.objects.exists() and chunk_folders() == []
    identity = file_sha256(Path(settings.OUTFITS_PRETRAINED))
    assert not image_cache_path(settings.OUTFITS_BACKBONE, identity).exists()  # none kept
    assert "embed_image_chunk[" in worker_log("helper")


def test_a_gpu_worker_without_a_gpu_fails_the_run_saying_so(
    shop, site_env, fanout_queue, start_worker, send_retrain
):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    site_env["OUTFITS_EMBEDDING_DEVICE"] = "cuda"  # what a GPU machine's worker is told
    start_worker("trainer")
    start_worker("helper", fanout_queue)
    run = create_training_run(epochs=2, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to stop")
    assert run.status == "failed"
    assert "Embedding images: chunk 1 of 4 failed on its worker" in run.message
    assert "sees no CUDA device" in run.message
    assert not ModelVersion.objects.exists() and chunk_folders() == []


@pytest.fixture
def busy_helper(site_env, fanout_queue, start_worker, shop, tmp_path):
    """A fan-out worker (a prefork pool of one: its main process still answers the run's
    question whether anyone serves the queue) kept busy with a long chunk of its own, so the
    run's chunks wait in the queue."""
    start_worker("helper", fanout_queue, pool="prefork")
    app = Celery(broker=site_env["CELERY_BROKER_URL"], set_as_current=False)
    picture = Product.objects.order_by("pk").first().image.path
    job = {"backbone": settings.OUTFITS_BACKBONE, "pretrained": settings.OUTFITS_PRETRAINED}
    (tmp_path / "busy").mkdir()
    app.send_task(
        "embeddings.tasks.embed_image_chunk",
        args=[job, [picture] * 100_000, str(tmp_path / "busy" / "00000.npy")],
        queue=fanout_queue,
    )
    app.close()


def embedding_under_way(run: TrainingRun) -> bool:
    run.refresh_from_db()
    assert not run.finished, f"the run ended early: {run.status}: {run.message}"
    return run.stage == "embedding images"


def test_cancel_while_the_chunks_wait_stops_the_run_and_drops_them(
    busy_helper, client, start_worker, send_retrain
):
    start_worker("trainer")
    run = create_training_run(epochs=2, unfrozen_blocks=0)
    send_retrain(run.pk)
    wait_for(lambda: embedding_under_way(run), "the run to wait for its chunks")
    assert len(chunk_folders()) == 1
    client.force_login(get_user_model().objects.create_superuser("staff", "s@example.com", "pw"))
    client.post(reverse("admin:embeddings_trainingrun_cancel", args=[run.pk]))
    run = wait_for(lambda: finished(run), "the run to stop", timeout=60)
    assert run.status == "cancelled", run.message
    assert not ModelVersion.objects.exists() and chunk_folders() == []


def test_chunks_that_stop_coming_fail_the_run_after_the_stall_time(
    site_env, busy_helper, start_worker, send_retrain
):
    site_env["OUTFITS_FANOUT_STALL_SECONDS"] = "3"
    start_worker("trainer")
    run = create_training_run(epochs=2, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to give up", timeout=120)
    assert run.status == "failed"
    assert "Embedding images: no chunk finished for 3 s" in run.message
    assert "0 of 4 are done" in run.message
    assert not ModelVersion.objects.exists() and chunk_folders() == []
