"""The deployed shape: PostgreSQL, a Redis broker and a real Celery worker process. The retrain
task is enqueued, picked up by the worker, and a new active model version appears."""

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/15"

pytestmark = pytest.mark.services


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def postgres_database():
    if not reachable(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import psycopg

    name = f"outfits_it_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES}/{name}"
    with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_retrain_task_runs_on_a_real_worker_against_postgres(
    tmp_path, postgres_database, small_catalog, backbone_checkpoint, manage_py
):
    if not reachable(6379):
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    import psycopg

    queue = f"training-test-{uuid.uuid4().hex[:8]}"  # no stale message of another run reaches us
    env = {
        **os.environ,
        "DATABASE_URL": postgres_database,
        "CELERY_BROKER_URL": REDIS_URL,
        "OUTFITS_TRAINING_QUEUE": queue,
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        "OUTFITS_BACKBONE": backbone_checkpoint.name,
        "OUTFITS_PRETRAINED": str(backbone_checkpoint.path),
        "OUTFITS_TRAINING_EPOCHS": "3",
    }
    manage_py(env, "migrate", "--noinput")
    manage_py(env, "import_catalog", str(small_catalog.products_csv))
    manage_py(env, "import_outfits", str(small_catalog.outfits_csv))
    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "outfits",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        queued = manage_py(env, "train", "--async")
        run_id = int(re.search(r"Training run (\d+) queued", queued).group(1))
        deadline = time.monotonic() + 300
        with psycopg.connect(postgres_database, autocommit=True) as connection:
            while time.monotonic() < deadline:
                status, message, version_id = connection.execute(
                    "SELECT status, message, model_version_id FROM embeddings_trainingrun "
                    "WHERE id = %s",
                    [run_id],
                ).fetchone()
                if status in {"succeeded", "failed"}:
                    break
                assert worker.poll() is None, "the worker died: see worker.log"
                time.sleep(1)
            active = connection.execute(
                "SELECT id, directory FROM embeddings_modelversion WHERE is_active"
            ).fetchall()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()
    log = (tmp_path / "worker.log").read_text()
    assert status == "succeeded", f"{status}: {message}\n{log[-3000:]}"
    assert "embeddings.tasks.retrain[" in log  # it was the worker, not an in-process call
    assert active == [(version_id, active[0][1])]
    assert (tmp_path / "var" / "models" / active[0][1] / "manifest.json").is_file()
