import hashlib
import json
import os

import pytest

from embeddings.engine.artifacts import (
    FORMAT_VERSION,
    ArtifactError,
    ModelVersionWriter,
    read_manifest,
    remember_checksums,
)


def test_committed_version_appears_whole_with_checksums(tmp_path):
    with ModelVersionWriter(tmp_path, "v1") as writer:
        (writer.directory / "weights.bin").write_bytes(b"abc")
        assert not (tmp_path / "v1").exists()  # invisible until committed
        directory = writer.commit(backbone="outfits-tiny", item_count=3)
    manifest = read_manifest(directory)
    assert manifest["backbone"] == "outfits-tiny" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["files"]["weights.bin"]["bytes"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_failed_writing_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), ModelVersionWriter(tmp_path, "v1") as writer:
        (writer.directory / "weights.bin").write_bytes(b"abc")
        raise RuntimeError("training diverged")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_missing_or_foreign_versions_are_refused(tmp_path):
    with ModelVersionWriter(tmp_path, "v1") as writer:
        (writer.directory / "weights.bin").write_bytes(b"abc")
        directory = writer.commit()
    (directory / "weights.bin").write_bytes(b"abd")
    with pytest.raises(ArtifactError, match="checksum"):
        read_manifest(directory)
    (directory / "weights.bin").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        read_manifest(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format version 99"):
        read_manifest(directory)
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        read_manifest(tmp_path)


def test_an_existing_version_is_never_overwritten(tmp_path):
    (tmp_path / "v1").mkdir()
    with pytest.raises(ArtifactError, match="already exists"), ModelVersionWriter(tmp_path, "v1"):
        pass


def test_a_refresh_lists_the_files_it_links_with_their_checksums_unread(tmp_path):
    served = tmp_path / "v1"
    served.mkdir()
    (served / "vectors.npy").write_bytes(b"x" * 1000)
    (served / "small.json").write_text("{}")
    # Its manifest's checksums are taken as the files', not read again: a sentinel shows it
    # (the true checksum would not); a file whose size differs from its entry is read.
    listed = {"vectors.npy": ("f" * 64, 1000), "small.json": ("0" * 64, 3)}
    files = {name: {"sha256": sha, "bytes": size} for name, (sha, size) in listed.items()}
    remember_checksums(served, {"files": files})
    with ModelVersionWriter(tmp_path, "v1.r1") as writer:
        for name in listed:
            os.link(served / name, writer.directory / name)
        refreshed = writer.commit()
    files = read_manifest(refreshed, verify_checksums=False)["files"]
    assert files["vectors.npy"]["sha256"] == "f" * 64
    assert files["small.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
