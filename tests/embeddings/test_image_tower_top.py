"""Fine-tuning the backbone's last image blocks: the frozen trunk plus the tuned top is the
same tower, training moves only the top, and a version's tuned blocks load back."""

import numpy as np
import pytest
import torch

from embeddings.engine.backbone import (
    ImageTowerTop,
    create_untrained_backbone,
    load_image_tower_top,
    save_image_tower_top,
    trunk_tokens,
)
from embeddings.engine.train import (
    HeadTrainingConfig,
    ItemEncoder,
    project,
    train_compatibility_head,
)


@pytest.fixture(scope="module")
def backbone():
    return create_untrained_backbone(seed=0)


@pytest.mark.parametrize("unfrozen", [1, 2])
def test_trunk_then_top_is_the_whole_image_tower(backbone, unfrozen):
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    visual = backbone.model.visual
    top = ImageTowerTop(visual, unfrozen).eval()
    with torch.no_grad():
        whole = visual(images)
        split = top(trunk_tokens(visual, images, len(visual.transformer.resblocks) - unfrozen))
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-5)


def test_a_top_as_deep_as_the_tower_is_refused(backbone):
    with pytest.raises(ValueError, match="1 to 3 of 4 blocks"):
        ImageTowerTop(backbone.model.visual, 4)


def test_training_tunes_the_top_and_leaves_the_backbone_alone(backbone, tmp_path):
    rng = np.random.default_rng(0)
    count = 60
    images = torch.randn(count, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    visual = backbone.model.visual
    frozen_before = {k: v.clone() for k, v in visual.state_dict().items()}
    top = ImageTowerTop(visual, 1)
    tokens = trunk_tokens(visual, images, 3).half()
    item_vectors = rng.normal(size=(count, 256)).astype(np.float32)  # 128 image ⊕ 128 text
    items = ItemEncoder(item_vectors, top, tokens)
    top_before = {k: v.clone() for k, v in top.state_dict().items()}
    categories = np.tile(np.arange(3), count // 3)
    outfits = [[i, i + 1, i + 2] for i in range(0, count, 3)]
    head, losses = train_compatibility_head(
        items, outfits, categories, HeadTrainingConfig(epochs=3, batch_size=16)
    )
    assert not top.training and not head.training
    assert any(not torch.equal(top_before[k], v) for k, v in top.state_dict().items())
    assert all(torch.equal(frozen_before[k], v) for k, v in visual.state_dict().items())
    # the text half of an item vector is untouched; the image half comes from the tuned top
    with torch.no_grad():
        encoded = items(torch.arange(count))
    np.testing.assert_array_equal(encoded[:, 128:].numpy(), item_vectors[:, 128:])
    assert np.allclose(np.linalg.norm(encoded[:, :128].numpy(), axis=1), 1, atol=1e-5)

    save_image_tower_top(top, tmp_path / "top.safetensors")
    loaded = load_image_tower_top(tmp_path / "top.safetensors", backbone)
    reloaded = ItemEncoder(item_vectors, loaded, tokens)
    np.testing.assert_allclose(project(head, reloaded), project(head, items), atol=1e-5)
