"""The backbone loads through open_clip's own `pretrained=<path>` path, and refuses to run on
random weights when the configured ones cannot be loaded."""

import json

import numpy as np
import pytest
import torch

from embeddings.engine.backbone import (
    MODEL_CONFIG_DIR,
    OFFLINE_BACKBONE,
    BackboneUnavailable,
    create_untrained_backbone,
    load_backbone,
    save_backbone_checkpoint,
)
from embeddings.engine.encode import encode_images, encode_items, encode_texts


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


def test_unreachable_pretrained_tag_fails_clearly(offline_hub):
    # The real download path, failing the way it does without network access.
    with pytest.raises(BackboneUnavailable, match="laion2b_s34b_b79k.*pretrain_backbone"):
        load_backbone("ViT-B-32", "laion2b_s34b_b79k")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """A Hugging Face hub cache on disk, in offline mode: what a machine that once downloaded
    a model sees. Models are put in it the way the hub lays them out."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def publish(repo_id: str, backbone) -> None:
        snapshot = "0" * 40
        repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(snapshot)
        files = repo / "snapshots" / snapshot
        save_backbone_checkpoint(backbone, files / "open_clip_model.safetensors")
        model_config = json.loads((MODEL_CONFIG_DIR / f"{OFFLINE_BACKBONE}.json").read_text())
        (files / "open_clip_config.json").write_text(
            json.dumps(
                {
                    "model_cfg": model_config,
                    "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3},
                }
            )
        )

    return publish


def test_an_hf_hub_model_loads_by_configuration_alone(offline_hub, small_catalog):
    # e.g. OUTFITS_BACKBONE=hf-hub:Marqo/marqo-fashionCLIP, here a small one of the same layout
    original = create_untrained_backbone(seed=7)
    offline_hub("outfits-test/tiny-fashion-clip", original)
    loaded = load_backbone("hf-hub:outfits-test/tiny-fashion-clip", "")
    titles = ["Navy plain blazer", "Mint gingham shirt"]
    np.testing.assert_allclose(
        encode_texts(loaded, titles), encode_texts(original, titles), atol=1e-5
    )
    # the hub's preprocessing configuration is the one used
    assert list(loaded.preprocess.transforms[-1].mean) == [0.5, 0.5, 0.5]


def test_an_hf_hub_model_absent_from_the_cache_fails_clearly(offline_hub):
    with pytest.raises(BackboneUnavailable, match="hf-hub:Marqo/marqo-fashionCLIP"):
        load_backbone("hf-hub:Marqo/marqo-fashionCLIP", "")


def test_the_fast_encoder_agrees_with_plain_open_clip_in_order_in_both_precisions(small_catalog):
    from PIL import Image

    from embeddings.engine.encode import encode_trunk_tokens

    backbone = create_untrained_backbone(seed=2)
    images = sorted(small_catalog.image_dir.iterdir())[:7]
    with torch.inference_mode():
        plain = []
        for path in images:  # full-size decode, float32, one at a time
            with Image.open(path) as image:
                pixels = backbone.preprocess(image.convert("RGB"))[None]
            plain.append(torch.nn.functional.normalize(backbone.model.encode_image(pixels)))
        reference = torch.cat(plain).numpy()
    for precision in ("float32", "bfloat16"):
        vectors = encode_images(backbone, images, batch_size=3, precision=precision)
        cosines = (vectors * reference).sum(axis=1)
        assert cosines.min() >= 0.99, (precision, cosines)
        assert np.argmax(vectors @ reference.T, axis=1).tolist() == list(range(7))  # in order
    tokens = {
        p: encode_trunk_tokens(backbone, images, 1, batch_size=3, precision=p).float()
        for p in ("float32", "bfloat16")
    }
    agreement = torch.nn.functional.cosine_similarity(tokens["float32"], tokens["bfloat16"], -1)
    assert agreement.min() >= 0.99
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        encode_images(backbone, images, precision="int4")


def test_a_gpu_asked_for_where_there_is_none_is_a_clear_error(small_catalog):
    from embeddings.engine.encode import embedding_device, encode_images

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert embedding_device("auto") == torch.device("cpu")
    backbone = create_untrained_backbone(seed=2)
    images = sorted(small_catalog.image_dir.iterdir())[:3]
    on_cpu = encode_images(backbone, images, device="cpu")
    np.testing.assert_array_equal(encode_images(backbone, images, device="auto"), on_cpu)
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        encode_images(backbone, images, device="cuda")
    with pytest.raises(ValueError, match="unknown embedding device 'tpu'"):
        encode_images(backbone, images, device="tpu")
