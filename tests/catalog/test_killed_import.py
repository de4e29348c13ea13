"""Real import processes killed or doubled: a worker killed mid-import (SIGKILL, no chance to
clean up) leaves whole chunks applied and a job that is found interrupted once its heartbeat
is stale, then resumes where it stopped; a second run of a job a live process is running is
refused. Either way the report counts every row once."""

import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ROWS = 4000
SLOW_ROWS = 600  # about 15 s at the slow image server's pace
STALE_SECONDS = 3


def site(tmp_path: Path, manage_py, **settings: str) -> dict[str, str]:
    """The environment of processes sharing one SQLite site (every process can open it)."""
    env = {
        **os.environ,
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        "OUTFITS_IMPORT_CHUNK_ROWS": "50",
        "OUTFITS_IMPORT_HEARTBEAT_SECONDS": "0.5",
        "OUTFITS_IMPORT_STALE_SECONDS": str(STALE_SECONDS),
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        **settings,
    }
    env.pop("DATABASE_URL", None)
    manage_py(env, "migrate", "--noinput")
    return env


def picture(number: int) -> Image.Image:
    return Image.new("RGB", (64, 64), (number % 256, number // 256 % 256, 90))


@pytest.fixture
def slow_pictures() -> Iterator[str]:
    """An image server taking 25 ms a picture: an import of its URLs runs long enough, at an
    even pace and little load, for a second process to try it meanwhile."""

    class Pictures(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.025)
            body = io.BytesIO()
            picture(int(Path(self.path).stem)).save(body, "PNG")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(body.tell()))
            self.end_headers()
            self.wfile.write(body.getvalue())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pictures)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def start_import(env: dict[str, str], csv_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_catalog", str(csv_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_committed(database: sqlite3.Connection, lines: int) -> int:
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and committed < lines:
        row = database.execute("SELECT resume_after_line FROM catalog_importjob").fetchone()
        committed = row[0] if row else 0
        time.sleep(0.05)
    assert committed >= lines, "the import never got going"
    return committed


def assert_counted_once(database: sqlite3.Connection, rows: int) -> None:
    """Every row created once, none rejected (a row run twice is "duplicate of line" itself)."""
    assert database.execute("SELECT COUNT(DISTINCT sku) FROM catalog_product").fetchone() == (rows,)
    rejections = database.execute("SELECT line, reason FROM catalog_importrejection").fetchall()
    assert rejections[:3] == []
    assert database.execute(
        "SELECT status, created, updated, unchanged, rejected FROM catalog_importjob"
    ).fetchone() == ("succeeded", rows, 0, 0, 0)


def test_killed_import_is_found_interrupted_and_resumes(tmp_path: Path, manage_py):
    env = site(tmp_path, manage_py)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    lines = ["sku,title,category,image"]
    for number in range(ROWS):  # distinct pictures, so every row decodes and stores an image
        picture(number).save(pictures / f"{number}.png")
        lines.append(f"S{number:05d},Shirt {number},Tops,{number}.png")
    csv_file = pictures / "catalog.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    importer = start_import(env, csv_file)
    database = sqlite3.connect(tmp_path / "var" / "db.sqlite3", timeout=10)
    wait_until_committed(database, 300)
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    killed_at = time.time()

    status, resume_after, worker = database.execute(
        "SELECT status, resume_after_line, worker FROM catalog_importjob"
    ).fetchone()
    products = database.execute("SELECT COUNT(*) FROM catalog_product").fetchone()[0]
    assert status == "running" and resume_after < ROWS + 1
    assert f"pid {importer.pid}" in worker  # the job names the process that held it
    assert products == resume_after - 1  # exactly the rows of committed chunks: none half-done

    # The reaper (Celery beat's task, and the admin's import pages) after the stale time.
    time.sleep(max(0.0, killed_at + STALE_SECONDS + 1 - time.time()))
    reaper = "from catalog.import_jobs import interrupt_stale_import_jobs as f; print(f())"
    assert manage_py(env, "shell", "-c", reaper).splitlines()[-1] == "[1]"
    status, message = database.execute("SELECT status, message FROM catalog_importjob").fetchone()
    assert status == "interrupted"
    assert f"pid {importer.pid}" in message and f"after line {resume_after}" in message

    output = manage_py(env, "resume_import", "1")
    assert f"{ROWS} created" in output and "0 rejected" in output
    assert_counted_once(database, ROWS)
    database.close()


def test_a_second_run_of_a_live_job_is_refused(tmp_path: Path, manage_py, slow_pictures: str):
    env = site(tmp_path, manage_py, OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS="127.0.0.1/32")
    lines = ["sku,title,category,image"]
    lines += [f"S{n:05d},Shirt {n},Tops,{slow_pictures}/{n}.png" for n in range(SLOW_ROWS)]
    csv_file = tmp_path / "catalog.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    importer = start_import(env, csv_file)
    database = sqlite3.connect(tmp_path / "var" / "db.sqlite3", timeout=10)
    try:
        wait_until_committed(database, 100)
        # `resume_import` while the first process runs the job: its heartbeat is fresh.
        second = subprocess.run(
            [sys.executable, "manage.py", "resume_import", "1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        still_running = importer.poll() is None
        _, errors = importer.communicate(timeout=600)
    finally:
        if importer.poll() is None:
            importer.kill()
    assert still_running, "the import ended before the second run was tried: make it longer"
    assert second.returncode != 0, second.stdout
    assert "is being run by" in second.stderr and "not starting a second run" in second.stderr
    assert importer.returncode == 0, errors[-3000:]
    assert_counted_once(database, SLOW_ROWS)
    database.close()


@pytest.mark.services
def test_celery_workers_a_second_delivery_is_refused_and_a_killed_worker_is_resumed(
    site_env, start_worker, worker_log, settings, slow_pictures: str
):
    """The deployed shape: Celery workers on Redis and PostgreSQL. The task delivered again
    while a live worker runs the job does nothing; once that worker is killed, the job is
    found interrupted after the stale time, and delivered again it finishes, counted once."""
    from celery import Celery
    from django.core.files.base import ContentFile

    from catalog import import_jobs
    from catalog.models import ImportJob, ImportRejection, Product
    from tests.support import wait_for

    settings.OUTFITS_IMPORT_STALE_SECONDS = STALE_SECONDS
    site_env.update(
        OUTFITS_IMPORT_CHUNK_ROWS="50",
        OUTFITS_IMPORT_HEARTBEAT_SECONDS="0.5",
        OUTFITS_IMPORT_STALE_SECONDS=str(STALE_SECONDS),
        OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS="127.0.0.1/32",
    )
    lines = ["sku,title,category,image"]
    lines += [f"S{n:05d},Shirt {n},Tops,{slow_pictures}/{n}.png" for n in range(SLOW_ROWS)]
    job = import_jobs.create_import_job("catalog", ContentFile("\n".join(lines) + "\n"), "c.csv")
    broker = Celery(broker=site_env["CELERY_BROKER_URL"], set_as_current=False)

    def deliver() -> None:  # as run_import.delay(job.pk) does, or the broker again
        broker.send_task(
            "catalog.tasks.run_import", args=[job.pk], queue=site_env["OUTFITS_TRAINING_QUEUE"]
        )

    def committed(lines: int) -> bool:
        job.refresh_from_db()
        return job.resume_after_line >= lines

    first = start_worker("first")
    deliver()
    wait_for(lambda: committed(100), "the first worker to commit chunks", timeout=120)
    start_worker("second", pool="prefork")
    deliver()
    wait_for(lambda: "not starting a second run" in worker_log("second"), "the refusal", 60)
    job.refresh_from_db()
    assert job.status == "running" and f"pid {first.pid}" in job.worker

    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_after = ImportJob.objects.get().resume_after_line
    wait_for(import_jobs.interrupt_stale_import_jobs, "the job to be found interrupted", timeout=30)
    assert ImportJob.objects.get().status == "interrupted"
    deliver()
    job = wait_for(
        lambda: (j := ImportJob.objects.get()).finished and j, "the resumed job to end", 180
    )
    assert job.status == "succeeded", job.message
    assert f"resuming after line {killed_after}" in worker_log("second")
    assert list(ImportRejection.objects.values_list("reason", flat=True)[:3]) == []
    assert (job.created, job.updated, job.unchanged, job.rejected) == (SLOW_ROWS, 0, 0, 0)
    assert Product.objects.count() == SLOW_ROWS
    broker.close()
