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


@pytest.mark.parametrize("unfrozen", [1, 2])
def test_the_class_token_shortcut_trains_as_the_full_block_does(backbone, unfrozen):
    """The folded class-token attention gives the full last block's output and the same
    gradients to every tuned parameter."""
    visual = backbone.model.visual
    torch.manual_seed(unfrozen)
    top = ImageTowerTop(visual, unfrozen)
    with torch.no_grad():  # away from the untrained backbone's symmetric start
        for parameter in top.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    assert top.folded
    images = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    tokens = trunk_tokens(visual, images, len(visual.transformer.resblocks) - unfrozen).clone()
    target = torch.randn(6, int(top.proj.shape[1]), generator=torch.Generator().manual_seed(3))

    def output_and_gradients(folded: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        top.zero_grad()
        top.folded, top.class_token_only = folded, folded  # neither: the full last block
        output = top(tokens)
        (output * target).sum().backward()
        return output.detach(), {n: p.grad.clone() for n, p in top.named_parameters()}

    full, full_gradients = output_and_gradients(False)
    folded, folded_gradients = output_and_gradients(True)
    torch.testing.assert_close(folded, full, atol=1e-5, rtol=1e-4)
    assert full_gradients.keys() == folded_gradients.keys()
    for name, gradient in full_gradients.items():
        torch.testing.assert_close(folded_gradients[name], gradient, atol=1e-5, rtol=1e-3)
    assert any(gradient.abs().sum() > 0 for gradient in folded_gradients.values())
