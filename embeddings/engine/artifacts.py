"""A model version on disk: one directory of artifacts with a manifest (format version,
checksums, the facts of its making), written under a temporary name and renamed into place so a
reader sees a whole version or none; checked against its manifest when loaded."""

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

FORMAT_VERSION = 2  # 2: type-aware pair weights (pair_weights.npz)
MANIFEST_NAME = "manifest.json"


class ArtifactError(RuntimeError):
    """A model version directory is missing, incomplete, corrupt or of another format."""


class ModelDirectoryUnusable(Exception):
    """OUTFITS_MODEL_DIR cannot take a new version: not writable, or too little room."""


def check_model_directory(root: Path, min_free_mb: int, nothing_done: str, again: str) -> None:
    """A new version (or a refresh of one) needs `root` (OUTFITS_MODEL_DIR) writable, with
    `min_free_mb` (OUTFITS_MODEL_DIR_MIN_FREE_MB) free. Checked by writing a probe file:
    permission bits say nothing to root, and a read-only file system only answers a write.
    The error says `nothing_done` and to `again` once fixed."""
    probe = root / f".write-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
        free = shutil.disk_usage(root).free
    except OSError as error:
        raise ModelDirectoryUnusable(
            f"The model directory {root} (OUTFITS_MODEL_DIR) cannot be written by this worker: "
            f"{error.strerror or error}. {nothing_done}; point OUTFITS_MODEL_DIR at a "
            f"writable directory and {again}."
        ) from error
    needed = min_free_mb * 2**20
    if free < needed:
        raise ModelDirectoryUnusable(
            f"The model directory {root} (OUTFITS_MODEL_DIR) has {free / 2**20:,.0f} MB free, "
            f"less than the {needed / 2**20:,.0f} MB a new version is given "
            f"(OUTFITS_MODEL_DIR_MIN_FREE_MB). {nothing_done}; free some space and {again}."
        )


# (device, inode, size, modified) → sha256 of the files this process has hashed. A version's
# files are never rewritten in place, and a refresh hard-links those it keeps: they are not read
# again by every refresh and every web process that loads it.
_hashed: dict[tuple[int, int, int, int], str] = {}


def _key(status: os.stat_result) -> tuple[int, int, int, int]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def remember_checksums(directory: Path, manifest: dict[str, Any]) -> None:
    """Take the checksums `directory`'s manifest gives its files as this process's own: a
    refresh hard-links most of them into the directory it writes, whose manifest then lists
    them without reading them again (1.6 GB at 1M items). Whoever loads that directory
    verifies them as ever: a file that no longer matches fails there."""
    for relative, expected in manifest["files"].items():
        status = (directory / relative).stat()
        if status.st_size == expected["bytes"]:
            _hashed.setdefault(_key(status), expected["sha256"])


def file_sha256(path: Path) -> str:
    key = _key(path.stat())
    if key in _hashed:
        return _hashed[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if len(_hashed) > 10_000:  # years of refreshes
        _hashed.clear()
    _hashed[key] = digest.hexdigest()
    return _hashed[key]


class ModelVersionWriter:
    """Use as a context manager: write files under `.directory`, then `commit(**facts)`.
    Leaving the block without committing (an error, a cancelled run) removes everything."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.final_directory = root / name
        self.directory = root / f".incomplete-{name}-{uuid.uuid4().hex[:8]}"
        self.committed = False

    def __enter__(self) -> "ModelVersionWriter":
        if self.final_directory.exists():
            raise ArtifactError(f"Model version directory {self.final_directory} already exists")
        self.directory.mkdir(parents=True)
        return self

    def commit(self, **facts: Any) -> Path:
        files = sorted(p for p in self.directory.rglob("*") if p.is_file())
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created_at": datetime.now(UTC).isoformat(),
            **facts,
            "files": {
                str(p.relative_to(self.directory)): {
                    "sha256": file_sha256(p),
                    "bytes": p.stat().st_size,
                }
                for p in files
            },
        }
        (self.directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(self.directory, self.final_directory)
        self.committed = True
        return self.final_directory

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self.committed:
            shutil.rmtree(self.directory, ignore_errors=True)


def read_manifest(
    directory: Path,
    verify_checksums: bool = True,
    verify_only: Callable[[str], bool] = lambda relative: True,
) -> dict[str, Any]:
    """The manifest of a model version, after checking its format and that every file is
    there, and the checksum of every file `verify_only(its relative path)` accepts (the files a
    reader reads: serving reads no training facts)."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a model version: {MANIFEST_NAME} is missing")
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{directory} has format version {manifest.get('format_version')}; this code reads "
            f"version {FORMAT_VERSION}. Retrain to produce a current model version."
        )
    for relative, expected in manifest["files"].items():
        file = directory / relative
        if not file.is_file():
            raise ArtifactError(f"{file} listed in the manifest is missing")
        if verify_checksums and verify_only(relative) and file_sha256(file) != expected["sha256"]:
            raise ArtifactError(f"{file} does not match its checksum in the manifest")
    return manifest
