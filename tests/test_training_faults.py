"""Trainings under faults: a broker that cannot be reached, a queued run no worker starts, a
database connection dropped under a running training, maintenance tasks while a training
occupies its worker, and a model directory that cannot take a new version. Real processes
where it matters: a broker port of our own with nothing listening (then a Redis of our own on
it), Celery workers, PostgreSQL backends of this test's own database terminated."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from embeddings.models import ModelVersion, TrainingRun
from embeddings.training_runs import (
    create_training_run,
    execute_training_run,
    fail_stale_training_runs,
    request_cancel,
)
from tests.support import ROOT, wait_for


def free_port() -> socket.socket:
    """A port of our own: bound, never listening, so connections to it are refused."""
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    return reserved


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """This process's Celery app publishing to `url` (not in-process tasks) for a while."""
    from outfits.celery import app

    saved = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}

    def forget_connections() -> None:  # pools made for one broker are not reused for another
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = app.amqp._producer_pool = None

    forget_connections()
    app.conf.update(broker_url=url, task_always_eager=False)
    try:
        yield
    finally:
        forget_connections()
        app.conf.update(**saved)


def retrain_form(settings) -> dict:
    return {"pretrained": settings.OUTFITS_PRETRAINED, "epochs": 2, "unfrozen_blocks": 0}


def test_retrain_with_the_broker_down_fails_its_run_says_why_and_a_later_retrain_is_queued(
    transactional_db, admin_client, settings, tmp_path
):
    port = free_port()
    number = port.getsockname()[1]
    url = reverse("admin:embeddings_modelversion_retrain")
    with celery_broker(f"redis://127.0.0.1:{number}/0"):
        response = admin_client.post(url, retrain_form(settings), follow=True)
        assert response.status_code == 200  # a message, not a 500
        page = response.content.decode()
        failed = TrainingRun.objects.get()
        assert failed.status == "failed" and failed.finished_at
        assert f"Training run {failed.pk} could not be queued" in failed.message
        assert f"127.0.0.1:{number}" in failed.message and "CELERY_BROKER_URL" in failed.message
        assert f"Training run {failed.pk} could not be queued" in page
        assert response.redirect_chain[-1][0] == reverse("admin:embeddings_modelversion_changelist")

        # The broker comes back (a Redis of our own on that port): the next Retrain is queued.
        port.close()
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(number),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: ping(number), "our Redis to answer", timeout=30)
            response = admin_client.post(url, retrain_form(settings), follow=True)
            queued = TrainingRun.objects.latest("created_at")
            assert queued != failed and queued.status == "queued"
            assert f"Training run {queued.pk} started." in response.content.decode()
            waiting = subprocess.run(
                ["redis-cli", "-p", str(number), "llen", settings.OUTFITS_TRAINING_QUEUE],
                capture_output=True,
                text=True,
                check=True,
            )
            assert waiting.stdout.strip() == "1"  # its task is on the broker
        finally:
            redis.terminate()
            redis.wait(timeout=20)


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as redis:
            redis.sendall(b"PING\r\n")
            return redis.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_a_queued_run_no_worker_starts_in_time_is_failed_and_frees_the_lock(db, settings):
    settings.OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS = 600
    lost = create_training_run()
    TrainingRun.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=601)
    )
    assert fail_stale_training_runs() == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and "No worker started this run within 600 s" in lost.message
    assert settings.OUTFITS_TRAINING_QUEUE in lost.message
    waiting = create_training_run()  # the lock is free; a fresh queued run is left alone
    assert fail_stale_training_runs() == 0
    waiting.refresh_from_db()
    assert waiting.status == "queued"
    assert execute_training_run(lost.pk).status == "failed"  # its late message does nothing


# --- A real worker and the test's own PostgreSQL database ---


def import_shop(catalog) -> None:
    call_command("import_catalog", str(catalog.products_csv))
    call_command("import_outfits", str(catalog.outfits_csv))


@pytest.fixture
def shop(db, small_catalog, use_backbone) -> None:
    import_shop(small_catalog)


@pytest.fixture
def worker_shop(site_env, small_catalog) -> None:
    """The shop in the database the site's worker processes share (committed)."""
    import_shop(small_catalog)


def worker_backends(pattern: str = "%") -> list[int]:
    """Backends of this test's own database (no other) but this connection, whose last query
    matches `pattern`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND query LIKE %s",
            [connection.settings_dict["NAME"], pattern],
        )
        return [pid for (pid,) in cursor.fetchall()]


def terminate(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def epochs_done(run: TrainingRun) -> int:
    run.refresh_from_db()
    assert not run.finished, f"the run ended early: {run.status}: {run.message}"
    return run.progress_done if run.stage == "training compatibility head" else 0


@pytest.mark.services
def test_a_heartbeat_whose_connection_drops_goes_on_and_the_run_is_not_taken_for_lost(
    worker_shop, settings, start_worker, send_retrain, worker_log
):
    settings.OUTFITS_TRAINING_STALE_SECONDS = 3  # 6 missed heartbeats of the worker
    start_worker()
    run = create_training_run(epochs=100_000, unfrozen_blocks=0)  # cancelled below
    send_retrain(run.pk)
    wait_for(lambda: epochs_done(run) >= 2, "the training to get going")
    # The heartbeat thread's connection: its cancel check (or its stamp) is its last query.
    heartbeat = wait_for(
        lambda: (
            worker_backends('%"embeddings_trainingrun"."cancel_requested" AND %')
            or worker_backends('UPDATE "embeddings_trainingrun" SET "heartbeat_at"%')
        ),
        "the heartbeat's connection",
    )
    terminate(heartbeat)
    killed_at = timezone.now()
    # The run pages and beat call the reaper meanwhile: a live run must not look lost.
    deadline = time.monotonic() + 3 * settings.OUTFITS_TRAINING_STALE_SECONDS
    while time.monotonic() < deadline:
        fail_stale_training_runs()
        epochs_done(run)  # fails the test if the run was ended
        time.sleep(0.3)
    assert run.heartbeat_at > killed_at + timedelta(seconds=2), "the heartbeat stopped"
    assert "failed; retrying" in worker_log() and "is back after" in worker_log()
    request_cancel(run)
    run = wait_for(lambda: (run.refresh_from_db(), run.finished and run)[1], "the run to stop")
    assert run.status == "cancelled", f"{run.status}: {run.message}"


@pytest.mark.services
def test_a_training_whose_connections_all_drop_completes_and_activates_its_version(
    worker_shop, settings, start_worker, send_retrain, worker_log
):
    settings.OUTFITS_TRAINING_STALE_SECONDS = 3
    start_worker()
    run = create_training_run(epochs=100, unfrozen_blocks=0)
    send_retrain(run.pk)
    wait_for(lambda: epochs_done(run) >= 2, "the training to get going")
    terminate(worker_backends())  # the heartbeat's and the training's own
    run = wait_for(
        lambda: (fail_stale_training_runs(), run.refresh_from_db(), run.finished and run)[2],
        "the run to finish",
    )
    assert run.status == "succeeded", f"{run.message}\n{worker_log()[-3000:]}"
    assert f"progress of training run {run.pk} not written" in worker_log()  # one report lost
    assert run.outcome == "activated" and run.model_version.is_active
    assert ModelVersion.objects.get(is_active=True) == run.model_version
    assert len(run.loss_curve) == 100


@pytest.mark.services
def test_the_stale_run_check_runs_while_a_training_occupies_its_worker(
    worker_shop, site_env, start_worker, send_retrain, worker_log
):
    site_env["OUTFITS_MAINTENANCE_QUEUE"] = f"maintenance-test-{uuid.uuid4().hex[:8]}"
    start_worker("trainer")
    start_worker("maintenance", queue=site_env["OUTFITS_MAINTENANCE_QUEUE"])
    run = create_training_run(epochs=500, unfrozen_blocks=0)
    send_retrain(run.pk)
    wait_for(lambda: epochs_done(run) >= 2, "the training to get going")
    # Sent as beat sends it: routed by the site's settings.
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from embeddings.tasks import fail_stale_training_runs as check; check.delay()"],
        cwd=ROOT, env=site_env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    wait_for(
        lambda: (
            "embeddings.tasks.fail_stale_training_runs[" in worker_log("maintenance")
            and "succeeded" in worker_log("maintenance")
        ),
        "the maintenance worker to run the check",
        timeout=60,
    )
    assert epochs_done(run) < 500  # the training was still going
    request_cancel(run)
    wait_for(lambda: (run.refresh_from_db(), run.finished)[1], "the run to stop", timeout=60)


SHOW_CELERY = (
    "import django, json; django.setup(); from django.conf import settings; "
    "from outfits.celery import app; "
    "print(json.dumps({'timezone': str(app.timezone), 'queues': {name: "
    "app.amqp.router.route({}, name)['queue'].name for name in ["
    "'embeddings.tasks.retrain', 'embeddings.tasks.fail_stale_training_runs', "
    "'embeddings.tasks.scheduled_retrain']}, 'options': {key: entry.get('options', {}) "
    "for key, entry in settings.CELERY_BEAT_SCHEDULE.items()}}))"
)


def test_maintenance_tasks_have_their_own_queue_expire_and_beat_keeps_the_site_time_zone():
    result = subprocess.run(
        [sys.executable, "-c", SHOW_CELERY],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "outfits.settings",
            "DJANGO_TIME_ZONE": "Asia/Tokyo",
            "OUTFITS_RETRAIN_CRONTAB": "0 3 * * 0",
        },  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(result.stdout)
    assert shown["timezone"] == "Asia/Tokyo"  # 03:00 is the shop's 03:00, not UTC's
    assert shown["queues"] == {
        "embeddings.tasks.retrain": "training",
        "embeddings.tasks.fail_stale_training_runs": "default",
        "embeddings.tasks.scheduled_retrain": "default",
    }
    assert 0 < shown["options"]["fail-stale-training-runs"]["expires"] <= 60
    assert shown["options"]["scheduled-retrain"]["expires"] > 0


# --- The model directory, checked before the compute ---


def test_a_model_directory_that_cannot_be_written_fails_the_run_at_its_start(
    shop, settings, tmp_path
):
    # A path under a regular file: no one, root included, can make a directory there.
    (tmp_path / "a-file").write_text("not a directory")
    settings.OUTFITS_MODEL_DIR = tmp_path / "a-file" / "models"
    run = execute_training_run(create_training_run(epochs=1, unfrozen_blocks=0).pk)
    assert run.status == "failed"
    assert run.message.startswith(f"The model directory {settings.OUTFITS_MODEL_DIR}")
    assert "(OUTFITS_MODEL_DIR) cannot be written" in run.message
    assert "Not a directory" in run.message and "Nothing was trained" in run.message
    assert run.stages == {} and run.loss_curve == []  # no compute was spent
    assert not ModelVersion.objects.exists()
    create_training_run()  # the lock is free


def test_a_model_directory_without_room_fails_the_run_at_its_start(shop, settings):
    settings.OUTFITS_MODEL_DIR_MIN_FREE_MB = 1 << 40  # an exabyte: no disk here has that
    run = execute_training_run(create_training_run(epochs=1, unfrozen_blocks=0).pk)
    assert run.status == "failed" and "MB free, less than the" in run.message
    assert "OUTFITS_MODEL_DIR_MIN_FREE_MB" in run.message
    assert run.stages == {} and not ModelVersion.objects.exists()
    assert not list(Path(settings.OUTFITS_MODEL_DIR).iterdir())  # no probe file left behind


def test_the_outcome_is_recorded_though_the_training_lost_its_connection(transactional_db):
    """The run's own connection died during the compute (an idle timeout, a failover): the
    outcome is committed on a fresh one."""
    import psycopg

    from embeddings.training_runs import RunProgress, record_outcome

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (OUTFITS_TEST_DATABASE_URL)")
    run = create_training_run()
    TrainingRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [own])
    outcome = {"status": "failed", "message": "ValueError: no outfits"}
    assert record_outcome(run.pk, None, outcome, RunProgress(run, heartbeat=None)) is False
    run.refresh_from_db()
    assert run.status == "failed" and run.message == "ValueError: no outfits"
