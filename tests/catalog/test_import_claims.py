"""Import jobs are claimed: one run at a time holds a job (owner, token, heartbeat); a run that
lost its claim writes nothing more; a job whose run went silent is interrupted, then resumed."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from catalog.import_jobs import (
    ImportClaimLost,
    ImportJobBusy,
    create_import_job,
    interrupt_stale_import_jobs,
    run_import_job,
)
from catalog.models import ImportJob, Product

CSV = b"sku,category\nA,Tops\nB,Tops\nC,Tops\nD,Tops\nE,Tops\n"


def new_job() -> ImportJob:
    return create_import_job("catalog", ContentFile(CSV), "c.csv")


def held_by(job: ImportJob, worker: str, seconds_ago: float) -> None:
    """As if `worker` had claimed the job and last stamped it `seconds_ago`."""
    beat = timezone.now() - timedelta(seconds=seconds_ago)
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", claim_token="f" * 32, worker=worker, heartbeat_at=beat, started_at=beat
    )


def test_a_job_another_run_holds_is_refused_until_its_heartbeat_is_stale(db, settings):
    settings.OUTFITS_IMPORT_STALE_SECONDS = 60
    job = new_job()
    held_by(job, "host-a pid 7", seconds_ago=5)
    with pytest.raises(ImportJobBusy, match="being run by host-a pid 7"):
        run_import_job(job.pk)
    assert interrupt_stale_import_jobs() == []
    assert Product.objects.count() == 0 and ImportJob.objects.get().status == "running"

    held_by(job, "host-a pid 7", seconds_ago=61)
    assert interrupt_stale_import_jobs() == [job.pk]
    job.refresh_from_db()
    assert job.status == "interrupted" and not job.claim_token
    assert "host-a pid 7" in job.message and "stopped sending heartbeats" in job.message
    resumed = run_import_job(job.pk)
    assert resumed.status == "succeeded" and resumed.created == 5


def test_a_run_that_lost_its_claim_stops_before_its_next_chunk(db, settings):
    settings.OUTFITS_IMPORT_CHUNK_ROWS = 2
    job = new_job()

    def taken_over(current: ImportJob) -> None:
        if current.lines_done == 3:  # after the first chunk, another run claims the job
            ImportJob.objects.filter(pk=job.pk).update(claim_token="e" * 32, worker="host-b")

    with pytest.raises(ImportClaimLost):
        run_import_job(job.pk, progress=taken_over)
    assert sorted(Product.objects.values_list("sku", flat=True)) == ["A", "B"]
    job.refresh_from_db()  # the job is the other run's: its status and counts untouched
    assert (job.status, job.worker, job.created, job.resume_after_line) == (
        "running",
        "host-b",
        2,
        3,
    )


def test_staff_resume_an_interrupted_job_from_its_page(
    client, db, settings, django_capture_on_commit_callbacks
):
    settings.OUTFITS_IMPORT_STALE_SECONDS = 60
    client.force_login(get_user_model().objects.create_superuser("merch", "m@x.com", "pw"))
    job = new_job()
    held_by(job, "gone pid 9", seconds_ago=300)
    page = client.get(reverse("admin:catalog_importjob_report", args=[job.pk])).content.decode()
    assert "Interrupted" in page and "gone pid 9" in page and "Resume this import" in page
    assert 'http-equiv="refresh"' not in page  # nothing moves until someone resumes it

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:catalog_importjob_resume", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "succeeded" and job.created == 5 and job.rejected == 0

    again = client.post(reverse("admin:catalog_importjob_resume", args=[job.pk]), follow=True)
    assert "only an interrupted job" in again.content.decode()


def test_the_broker_redelivers_no_task_still_within_its_time_limit():
    """Redis hands an unacknowledged message (acks_late) to another worker after the
    visibility timeout: it must outlast the longest task, or a long import runs twice."""
    from outfits.celery import app

    app.loader.import_default_modules()
    limits = {name: task.time_limit for name, task in app.tasks.items() if task.time_limit}
    assert limits["catalog.tasks.run_import"] >= 6 * 3600
    run_import = app.tasks["catalog.tasks.run_import"]
    assert run_import.acks_late and run_import.reject_on_worker_lost
    assert app.conf.broker_transport_options["visibility_timeout"] > max(limits.values())


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_outlives_a_lost_database_connection(settings, caplog):
    """PostgreSQL drops the heartbeat thread's connection (a restart, a failover, an idle
    timeout): the thread logs it, reconnects and goes on stamping."""
    from django.db import connection

    from catalog.import_jobs import ClaimHeartbeat
    from tests.support import wait_for

    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    settings.OUTFITS_IMPORT_HEARTBEAT_SECONDS = 0.1
    job = new_job()
    ImportJob.objects.filter(pk=job.pk).update(status="running", claim_token="a" * 32)

    def stamp() -> object:
        return ImportJob.objects.get(pk=job.pk).heartbeat_at

    def heartbeat_backends() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query LIKE %s",
                ["%heartbeat_at%"],
            )
            return [pid for (pid,) in cursor.fetchall()]

    with ClaimHeartbeat(job.pk, "a" * 32) as heartbeat:
        wait_for(stamp, "a first heartbeat", timeout=30, every=0.05)
        for pid in wait_for(heartbeat_backends, "the heartbeat's connection", timeout=30):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_for(lambda: "missed" in caplog.text, "the heartbeat to notice", timeout=30)
        before = stamp()
        wait_for(lambda: stamp() > before, "a heartbeat after the loss", timeout=30, every=0.05)
        assert heartbeat.thread.is_alive()
    assert f"heartbeat of import job {job.pk} missed" in caplog.text


def test_the_rest_api_says_which_worker_holds_a_job_and_when_it_last_beat(db):
    from rest_framework.test import APIClient

    job = new_job()
    held_by(job, "host-a pid 7", seconds_ago=5)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("boss"))
    shown = client.get(f"/api/v1/imports/{job.pk}/").json()
    assert shown["status"] == "running" and shown["worker"] == "host-a pid 7"
    beat = ImportJob.objects.get(pk=job.pk).heartbeat_at
    assert shown["heartbeat_at"] == beat.isoformat().replace("+00:00", "Z")
