"""The backbone loads through open_clip's own `pretrained=<path>` path, and refuses to run on
random weights when the configured ones cannot be loaded."""

import numpy as np
import pytest

from embeddings.backbone import (
    BackboneUnavailable,
    create_untrained_backbone,
    load_backbone,
    save_backbone_checkpoint,
)
from embeddings.encode import encode_images, encode_items, encode_texts


def test_saved_checkpoint_loads_through_the_pretrained_path_with_identical_outputs(
    tmp_path, small_catalog
):
    original = create_untrained_backbone(seed=5)
    path = save_backbone_checkpoint(original, tmp_path / "tiny.safetensors")
    loaded = load_backbone("outfits-tiny", str(path))
    images = sorted(small_catalog.image_dir.iterdir())[:3]
    np.testing.assert_allclose(
        encode_images(loaded, images), encode_images(original, images), atol=1e-5
    )
    titles = ["Navy plain blazer", "Mint gingham shirt"]
    np.testing.assert_allclose(
        encode_texts(loaded, titles), encode_texts(original, titles), atol=1e-5
    )
    other = create_untrained_backbone(seed=6)
    assert not np.allclose(encode_texts(other, titles), encode_texts(original, titles), atol=1e-3)


def test_items_are_unit_image_and_title_vectors_side_by_side(small_catalog):
    backbone = create_untrained_backbone()
    images = sorted(small_catalog.image_dir.iterdir())[:4]
    items = encode_items(backbone, images, ["a", "b", "c", "d"])
    assert items.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(items[:, :128], axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items[:, 128:], axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="4 images but 1 titles"):
        encode_items(backbone, images, ["a"])


def test_missing_checkpoint_names_the_setting_and_the_offline_alternative(tmp_path):
    with pytest.raises(BackboneUnavailable) as error:
        load_backbone("outfits-tiny", str(tmp_path / "absent.safetensors"))
    assert "OUTFITS_PRETRAINED" in str(error.value)
    assert "pretrain_backbone" in str(error.value)


def test_no_pretrained_source_is_refused_rather_than_random_weights():
    with pytest.raises(BackboneUnavailable, match="OUTFITS_PRETRAINED is empty"):
        load_backbone("outfits-tiny", "")


def test_unknown_pretrained_tag_is_refused():
    with pytest.raises(BackboneUnavailable, match="OUTFITS_BACKBONE='ViT-B-32'"):
        load_backbone("ViT-B-32", "no-such-tag")


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "wrong.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneUnavailable, match="Could not load backbone"):
        load_backbone("outfits-tiny", str(path))


def test_unreachable_pretrained_tag_fails_clearly(monkeypatch):
    # The real download path, made to fail at once the way it does without network access.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailable, match="laion2b_s34b_b79k.*pretrain_backbone"):
        load_backbone("ViT-B-32", "laion2b_s34b_b79k")
