"""The deployed shape of retraining: real Celery worker processes on the Redis broker, sharing
the test's PostgreSQL database. Retrain end to end, the training lock across processes, a
worker killed mid-run, a cancel from the admin, a diverging run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from embeddings.models import ModelVersion, TrainingRun
from embeddings.training_runs import STAGES, create_training_run
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.services


@pytest.fixture
def shop(site_env, small_catalog):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))


@pytest.fixture
def serving(shop, settings) -> ModelVersion:
    """A shop with an active version, trained in this process."""
    call_command("train", epochs=2, unfreeze_blocks=0)
    return ModelVersion.objects.get(is_active=True)


def finished(run: TrainingRun) -> TrainingRun | None:
    run.refresh_from_db()
    return run if run.finished else None


def training_under_way(run: TrainingRun) -> bool:
    run.refresh_from_db()
    assert not run.finished, f"the run ended early: {run.status}: {run.message}"
    return run.stage == "training compatibility head" and run.progress_done >= 2


def version_directories(settings) -> set[str]:
    return {path.name for path in Path(settings.OUTFITS_MODEL_DIR).iterdir()}


def test_retrain_runs_on_a_worker_and_reports_every_stage(
    shop, start_worker, send_retrain, worker_log
):
    start_worker()
    run = create_training_run(epochs=3, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to finish")
    assert run.status == "succeeded", f"{run.message}\n{worker_log()[-3000:]}"
    assert "embeddings.tasks.retrain[" in worker_log()  # the worker ran it, not this process
    assert run.outcome == "activated" and run.model_version.is_active
    assert run.worker and str(os.getpid()) not in run.worker
    assert set(STAGES) <= run.stages.keys()
    assert all(run.stages[stage]["done"] == run.stages[stage]["total"] for stage in STAGES)
    assert len(run.loss_curve) == 3 and run.metrics["fitb"] is not None
    assert run.product_count == 56 and run.outfit_count == 60


def test_two_processes_asking_at_once_start_one_training(
    shop, site_env, start_worker, send_retrain, worker_log
):
    start_worker("first")
    start_worker("second")
    # Two web processes clicking Retrain at the same moment: one wins, one is told why.
    askers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "train", "--async", "--epochs", "2"],
            cwd=ROOT,
            env=site_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [asker.communicate(timeout=120) for asker in askers]
    codes = sorted(asker.returncode for asker in askers)
    assert codes == [0, 1], outputs
    refusal = next(err for (_, err), asker in zip(outputs, askers, strict=True) if asker.returncode)
    assert "Only one training runs at a time" in refusal
    run = TrainingRun.objects.get()
    # The same run delivered to both workers (a redelivery) still trains once.
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to finish")
    assert run.status == "succeeded", run.message
    wait_for(
        lambda: "not starting it again" in worker_log("first") + worker_log("second"),
        "the second delivery to be refused",
        timeout=60,
    )
    assert ModelVersion.objects.count() == 1


def test_a_killed_worker_fails_its_run_keeps_the_active_version_and_frees_the_lock(
    serving, settings, client, start_worker, send_retrain
):
    settings.OUTFITS_TRAINING_STALE_SECONDS = 3
    before = version_directories(settings)
    worker = start_worker()
    run = create_training_run(epochs=500, unfrozen_blocks=0)
    send_retrain(run.pk)
    wait_for(lambda: training_under_way(run), "the training to get going")
    os.killpg(worker.pid, signal.SIGKILL)  # no chance to clean up
    worker.wait()

    client.force_login(get_user_model().objects.create_superuser("staff", "s@example.com", "pw"))
    state_url = reverse("admin:embeddings_trainingrun_state", args=[run.pk])
    state = wait_for(
        lambda: (data := client.get(state_url).json())["finished"] and data,
        "the run page to show the run failed",
        timeout=60,
    )
    assert state["status"] == "failed" and "stopped sending heartbeats" in state["html"]
    assert ModelVersion.objects.get(is_active=True) == serving
    assert ModelVersion.objects.count() == 1 and version_directories(settings) == before
    create_training_run(epochs=1)  # the lock is free again


def test_cancel_from_the_admin_stops_the_run_at_its_next_batch(
    serving, settings, client, start_worker, send_retrain
):
    before = version_directories(settings)
    start_worker()
    run = create_training_run(epochs=500, unfrozen_blocks=0)
    send_retrain(run.pk)
    wait_for(lambda: training_under_way(run), "the training to get going")
    client.force_login(get_user_model().objects.create_superuser("staff", "s@example.com", "pw"))
    response = client.post(reverse("admin:embeddings_trainingrun_cancel", args=[run.pk]))
    assert response.status_code == 302
    run = wait_for(lambda: finished(run), "the run to stop", timeout=60)
    assert run.status == "cancelled" and "Cancelled by staff" in run.message
    assert len(run.loss_curve) < 500
    assert ModelVersion.objects.get(is_active=True) == serving
    assert ModelVersion.objects.count() == 1 and version_directories(settings) == before
    create_training_run(epochs=1)  # the lock is free again


def test_a_diverging_run_fails_clearly_and_keeps_the_active_version(
    serving, site_env, start_worker, send_retrain
):
    site_env["OUTFITS_TRAINING_LEARNING_RATE"] = "1e30"
    start_worker()
    run = create_training_run(epochs=20, unfrozen_blocks=0)
    send_retrain(run.pk)
    run = wait_for(lambda: finished(run), "the run to stop")
    assert run.status == "failed"
    assert "diverged at epoch" in run.message and "loss nan" in run.message
    assert ModelVersion.objects.get(is_active=True) == serving
    assert ModelVersion.objects.count() == 1
