"""Shared fixtures: every test gets its own media, model and backbone paths; the small demo
catalog and a briefly pretrained offline backbone are made once per session."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from catalog.demo_catalog import DemoCatalog, generate_demo_catalog
from catalog.import_jobs import create_import_job, run_import_job
from catalog.models import ImportJob
from tests.support import ROOT


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path: Path):
    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OUTFITS_IMPORT_FILES_DIR = tmp_path / "private" / "imports"
    settings.OUTFITS_MODEL_DIR = tmp_path / "models"
    settings.OUTFITS_PRETRAINED = str(tmp_path / "backbones" / "outfits-tiny.safetensors")
    settings.OUTFITS_TRAINING_EPOCHS = 8
    settings.OUTFITS_OUTFIT_MODEL_EPOCHS = 4
    from embeddings import loaded_versions
    from outfits import serving

    # No model version, nor a failure to load one, nor a serving snapshot (which a later test
    # would otherwise start from, reloading a large change of its own beside), leaks from one
    # test's files into another.
    loaded_versions.clear_loaded()
    loaded_versions.photo_encoders.failed_loads.clear()
    loaded_versions.photo_encoders.failed = serving._snapshot = None
    yield
    if loaded_versions.photo_encoders.warming is not None:
        # A photo encoder loading in the background lands now.
        loaded_versions.photo_encoders.warming.join()
    loaded_versions.clear_loaded()
    loaded_versions.photo_encoders.failed_loads.clear()
    loaded_versions.photo_encoders.failed = serving._snapshot = None


@pytest.fixture
def trained_shop(db, small_catalog, use_backbone):
    """The small catalog and its outfits imported, and a model trained and active."""
    from django.core.management import call_command

    from embeddings.models import ModelVersion

    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=4)
    return ModelVersion.objects.get(is_active=True)


@pytest.fixture
def storefront(db):
    """An API client holding a fresh storefront API key (`.api_key`, `.raw_key`)."""
    from rest_framework.test import APIClient

    from outfits.api_keys import create_api_key

    key, raw_key = create_api_key("Test storefront", ["https://shop.example.com"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    client.api_key, client.raw_key = key, raw_key
    return client


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> DemoCatalog:
    return generate_demo_catalog(
        tmp_path_factory.mktemp("demo"), products_per_category=8, outfit_count=60, seed=3
    )


@dataclass(frozen=True)
class BackboneCheckpoint:
    name: str
    path: Path


@pytest.fixture(scope="session")
def backbone_checkpoint(tmp_path_factory, small_catalog: DemoCatalog) -> BackboneCheckpoint:
    """The offline backbone after two epochs of contrastive pretraining on the small catalog,
    on its packshots as they are: the tolerances of the path tests below were set on it (two
    epochs of phone photos leave 56 products too blurred to tell apart; test_pretrain.py
    covers the augmentation)."""
    import csv

    from embeddings.engine.backbone import create_untrained_backbone, save_backbone_checkpoint
    from embeddings.engine.pretrain import PretrainingConfig, pretrain_contrastive

    with small_catalog.products_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    backbone = create_untrained_backbone()
    pretrain_contrastive(
        backbone,
        [small_catalog.products_csv.parent / row["image"] for row in rows],
        [row["title"] for row in rows],
        PretrainingConfig(epochs=2, batch_size=16, phone_photos=0.0),
    )
    path = tmp_path_factory.mktemp("backbone") / "outfits-tiny.safetensors"
    save_backbone_checkpoint(backbone, path)
    return BackboneCheckpoint(backbone.name, path)


@pytest.fixture
def use_backbone(settings, backbone_checkpoint: BackboneCheckpoint) -> BackboneCheckpoint:
    settings.OUTFITS_BACKBONE = backbone_checkpoint.name
    settings.OUTFITS_PRETRAINED = str(backbone_checkpoint.path)
    return backbone_checkpoint


def draw(path: Path, colour: str = "navy", size: tuple[int, int] = (32, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def draw_image() -> Callable[..., Path]:
    return draw


@pytest.fixture
def images(tmp_path: Path, settings) -> Path:
    """A folder under an allowed import root with three good pictures and a corrupt one."""
    folder = tmp_path / "imports" / "pictures"
    for name, colour in [("a.png", "navy"), ("b.png", "white"), ("c.png", "red")]:
        draw(folder / name, colour)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    settings.OUTFITS_IMPORT_ROOTS = [tmp_path / "imports"]
    return folder


@pytest.fixture
def run_import(db) -> Callable[..., ImportJob]:
    """Record an import job for `content` (text or bytes) and run it, as the task would."""

    def run(
        content: str | bytes,
        kind: str = "catalog",
        name: str = "upload.csv",
        encoding: str = "utf-8",
        **options,
    ) -> ImportJob:
        data = content.encode(encoding) if isinstance(content, str) else content
        job = create_import_job(kind, ContentFile(data), name, **options)
        return run_import_job(job.pk)

    return run


def site_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` for a process of the site itself (the site's settings, not the tests')."""
    return {**env, "DJANGO_SETTINGS_MODULE": "outfits.settings"}


@pytest.fixture
def manage_py() -> Callable[..., str]:
    """Run `manage.py ARGUMENTS` in a subprocess with environment `env` (another database,
    another var dir); fails the test with the command's stderr if it fails."""
    root = Path(__file__).resolve().parent.parent

    def run(env: dict[str, str], *arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=root,
            env=site_environment(env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"manage.py {arguments} failed:\n{result.stderr[-3000:]}"
        return result.stdout

    return run


# --- The deployed shape: worker and web server processes on the test's own database ---

REDIS_URL = "redis://127.0.0.1:6379/15"


def reachable(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def site_env(transactional_db, settings, use_backbone, tmp_path: Path) -> dict[str, str]:
    """The environment of a worker or web server process of the site that shares this test's
    PostgreSQL database (committed data: `transactional_db`), its files, and a Redis queue of
    its own (no stale message of another test reaches it)."""
    import uuid

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (OUTFITS_TEST_DATABASE_URL)")
    if not reachable(6379):
        pytest.skip("needs Redis on 127.0.0.1:6379")
    database = connection.settings_dict
    return site_environment(
        {
            **os.environ,
            "DATABASE_URL": (
                f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}"
                f"/{database['NAME']}"
            ),
            "CELERY_BROKER_URL": REDIS_URL,
            "OUTFITS_TRAINING_QUEUE": f"training-test-{uuid.uuid4().hex[:8]}",
            "OUTFITS_REFRESH_QUEUE": f"refresh-test-{uuid.uuid4().hex[:8]}",
            "OUTFITS_EXPORT_QUEUE": f"export-test-{uuid.uuid4().hex[:8]}",
            "OUTFITS_REFRESH_ON_CHANGE": "false",
            "OUTFITS_VAR_DIR": str(settings.VAR_DIR),
            "OUTFITS_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "OUTFITS_IMPORT_FILES_DIR": str(settings.OUTFITS_IMPORT_FILES_DIR),
            "OUTFITS_MODEL_DIR": str(settings.OUTFITS_MODEL_DIR),
            "OUTFITS_BACKBONE": settings.OUTFITS_BACKBONE,
            "OUTFITS_PRETRAINED": settings.OUTFITS_PRETRAINED,
            "OUTFITS_TRAINING_HEARTBEAT_SECONDS": "0.5",
            "LOG_LEVEL": "INFO",
        }
    )


@pytest.fixture
def start_worker(site_env: dict[str, str], tmp_path: Path):
    """Start a real Celery worker process on the site's training queue (or `queue`), in one
    process (or a `pool` of one child): `start(name)` returns the process (its log is
    `worker_log(name)`); all are stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(
        name: str = "worker", queue: str | None = None, pool: str = "solo"
    ) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "outfits",
                "worker",
                "-Q",
                queue or site_env["OUTFITS_TRAINING_QUEUE"],
                "-n",
                f"{name}@%h",
                f"--pool={pool}",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],  # fmt: skip
            cwd=ROOT,
            env=site_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a SIGKILL reaches all of it
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


@pytest.fixture
def worker_log(tmp_path: Path) -> Callable[[str], str]:
    return lambda name="worker": (tmp_path / f"{name}.log").read_text()


@pytest.fixture
def send_retrain(site_env: dict[str, str]) -> Callable[[int], None]:
    """Put a retrain message for a run on the broker, exactly as `retrain.delay` does."""
    from celery import Celery

    app = Celery(broker=site_env["CELERY_BROKER_URL"], set_as_current=False)

    def send(run_id: int) -> None:
        app.send_task(
            "embeddings.tasks.retrain", args=[run_id], queue=site_env["OUTFITS_TRAINING_QUEUE"]
        )

    yield send
    app.close()


@pytest.fixture
def web_server(site_env: dict[str, str], tmp_path: Path) -> str:
    """A web server process of the site (PostgreSQL, the Redis broker); returns its base URL."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "web.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=site_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/admin/login/", timeout=2)
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.3)
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=20)
