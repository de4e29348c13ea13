"""Shared fixtures: every test gets its own media, model and backbone paths; the small demo
catalog and a briefly pretrained offline backbone are made once per session."""

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


@pytest.fixture(autouse=True)
def isolated_files(settings, tmp_path: Path):
    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OUTFITS_MODEL_DIR = tmp_path / "models"
    settings.OUTFITS_PRETRAINED = str(tmp_path / "backbones" / "outfits-tiny.safetensors")
    settings.OUTFITS_TRAINING_EPOCHS = 8
    from embeddings import services

    services._loaded = None  # no model version leaks from one test's files into another
    yield
    services._loaded = None


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
    """The offline backbone after two epochs of contrastive pretraining on the small catalog."""
    import csv

    from embeddings.backbone import create_untrained_backbone, save_backbone_checkpoint
    from embeddings.pretrain import PretrainingConfig, pretrain_contrastive

    with small_catalog.products_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    backbone = create_untrained_backbone()
    pretrain_contrastive(
        backbone,
        [small_catalog.products_csv.parent / row["image"] for row in rows],
        [row["title"] for row in rows],
        PretrainingConfig(epochs=2, batch_size=16),
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


@pytest.fixture
def manage_py() -> Callable[..., str]:
    """Run `manage.py ARGUMENTS` in a subprocess with environment `env` (another database,
    another var dir); fails the test with the command's stderr if it fails."""
    root = Path(__file__).resolve().parent.parent

    def run(env: dict[str, str], *arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"manage.py {arguments} failed:\n{result.stderr[-3000:]}"
        return result.stdout

    return run
