"""Loads the open_clip backbone that embeds product images and titles.

A backbone is named the open_clip way: a model name plus a pretrained source (a tag such as
`laion2b_s34b_b79k`, or a checkpoint file), or an `hf-hub:`/`local-dir:` model. The project
registers its own small configs (model_configs/) so it can build a backbone offline.
"""

import copy
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transformer import VisionTransformer
from PIL import Image
from torch import nn

logger = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
OFFLINE_BACKBONE = "outfits-tiny"
# The architectures `pretrain_backbone` can build: the project's own configs (outfits-tiny-128
# sees 128 px in patches of 16: the same 64 tokens as outfits-tiny, four times the pixels).
OWN_BACKBONES = tuple(sorted(path.stem for path in MODEL_CONFIG_DIR.glob("*.json")))
SCHEMA_PREFIXES = ("hf-hub:", "local-dir:")

open_clip.add_model_config(MODEL_CONFIG_DIR)


class BackboneUnavailable(RuntimeError):
    """The configured pretrained backbone cannot be loaded."""


@dataclass
class Backbone:
    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    train_preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    name: str
    pretrained: str


def _offline_hint() -> str:
    return (
        f"Offline alternative: build the project's own backbone with "
        f"`python manage.py pretrain_backbone` and set OUTFITS_BACKBONE={OFFLINE_BACKBONE} "
        f"OUTFITS_PRETRAINED=<the checkpoint it writes>."
    )


def load_backbone(name: str, pretrained: str) -> Backbone:
    """Load `name` with real weights from `pretrained`; never fall back to random weights."""
    if not name.startswith(SCHEMA_PREFIXES):
        if not pretrained:
            raise BackboneUnavailable(
                f"OUTFITS_PRETRAINED is empty for OUTFITS_BACKBONE={name!r}: a backbone without "
                f"pretrained weights would give meaningless matches. {_offline_hint()}"
            )
        looks_like_file = os.sep in pretrained or pretrained.endswith(
            (".pt", ".pth", ".bin", ".safetensors")
        )
        if looks_like_file and not Path(pretrained).is_file():
            raise BackboneUnavailable(
                f"Backbone checkpoint {pretrained} (OUTFITS_PRETRAINED) does not exist. "
                f"{_offline_hint()}"
            )
    try:
        model, train_preprocess, preprocess = open_clip.create_model_and_transforms(
            name,
            pretrained=None if name.startswith(SCHEMA_PREFIXES) else pretrained,
            require_pretrained=True,
        )
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as error:  # open_clip raises many types: network, tag, shape mismatch
        raise BackboneUnavailable(
            f"Could not load backbone OUTFITS_BACKBONE={name!r} with "
            f"OUTFITS_PRETRAINED={pretrained!r}: {error}. {_offline_hint()}"
        ) from error
    model.eval()
    logger.info("Loaded backbone %s (%s)", name, pretrained or "from its hub/dir")
    return Backbone(model, preprocess, train_preprocess, tokenizer, name, pretrained)


@contextmanager
def _random_weights_expected() -> Iterator[None]:
    """open_clip warns on the root logger that a model made without weights is "initialized
    randomly"; here that is the point (pretraining starts from it), not an alarm."""

    def not_the_random_warning(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(not_the_random_warning)
    try:
        yield
    finally:
        root.removeFilter(not_the_random_warning)


def create_untrained_backbone(name: str = OFFLINE_BACKBONE, seed: int = 0) -> Backbone:
    """A randomly initialised backbone: the starting point of pretraining, and of unit tests."""
    torch.manual_seed(seed)
    with _random_weights_expected():
        model, train_preprocess, preprocess = open_clip.create_model_and_transforms(name)
    model.eval()
    return Backbone(model, preprocess, train_preprocess, open_clip.get_tokenizer(name), name, "")


def save_backbone_checkpoint(backbone: Backbone, path: Path) -> Path:
    """Write the weights as a safetensors file that `load_backbone(name, str(path))` reads."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        key: tensor.detach().contiguous() for key, tensor in backbone.model.state_dict().items()
    }
    # Written beside the target then renamed, so a reader never sees half a checkpoint.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        save_file(state, str(temporary), metadata={"open_clip_model": backbone.name})
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


class ImageTowerTop(nn.Module):
    """The last `block_count` transformer blocks of a ViT image tower with its final norm and
    projection: the part of the backbone fine-tuned for compatibility while the early layers
    stay frozen. Its input is the frozen trunk's tokens (see `trunk_tokens`), computed once per
    image, so a training step costs a few blocks rather than the whole tower."""

    def __init__(self, visual: nn.Module, block_count: int) -> None:
        super().__init__()
        if not isinstance(visual, VisionTransformer) or visual.attn_pool is not None:
            raise BackboneUnavailable(
                f"Fine-tuning the last blocks needs an open_clip ViT image tower; this backbone "
                f"has {type(visual).__name__}. Set OUTFITS_UNFROZEN_BLOCKS=0 (or "
                f"--unfreeze-blocks 0) to train the head alone."
            )
        total = len(visual.transformer.resblocks)
        if not 1 <= block_count < total:
            raise ValueError(f"Can unfreeze 1 to {total - 1} of {total} blocks, not {block_count}")
        self.block_count = block_count
        self.blocks = copy.deepcopy(visual.transformer.resblocks[total - block_count :])
        self.ln_post = copy.deepcopy(visual.ln_post)
        self.proj = nn.Parameter(visual.proj.detach().clone())
        # With class-token pooling only the class token's output of the last block matters:
        # attend from it alone, with the key and value projections folded into its side
        # (class_token_attention): about 9x less work than the attention of the full block.
        self.class_token_only = visual.pool_type == "tok" and not visual.final_ln_after_pool
        self.folded = self.class_token_only and _foldable(self.blocks[-1])
        self.pool_type = visual.pool_type

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Trunk tokens (N, T, W) → image features (N, D), not normalised."""
        x = tokens
        for block in self.blocks[:-1]:
            x = block(x)
        last = self.blocks[-1]
        if self.class_token_only:
            if self.folded:
                attended = class_token_attention(last.attn, last.ln_1, x)
            else:
                normed = last.ln_1(x)
                attended = last.attention(normed[:, :1], normed, normed)
            x = x[:, :1] + last.ls_1(attended)
            x = x + last.ls_2(last.mlp(last.ln_2(x)))
            pooled = self.ln_post(x[:, 0])
        else:
            x = self.ln_post(last(x))
            pooled = x[:, 1:].mean(dim=1) if self.pool_type == "avg" else x[:, 0]
        return pooled @ self.proj

    def load_into(self, visual: nn.Module) -> None:
        """Write the tuned weights back into a backbone's image tower (e.g. to embed a new
        photo with the version's tuned backbone)."""
        total = len(visual.transformer.resblocks)
        for offset, block in enumerate(self.blocks):
            visual.transformer.resblocks[total - self.block_count + offset].load_state_dict(
                block.state_dict()
            )
        visual.ln_post.load_state_dict(self.ln_post.state_dict())
        with torch.no_grad():
            visual.proj.copy_(self.proj)


def _foldable(block: nn.Module) -> bool:
    attn, norm = getattr(block, "attn", None), getattr(block, "ln_1", None)
    return (
        isinstance(attn, nn.MultiheadAttention)
        and attn.batch_first
        and attn._qkv_same_embed_dim
        and attn.in_proj_bias is not None
        and attn.bias_k is None
        and not attn.add_zero_attn
        and attn.dropout == 0.0
        and isinstance(norm, nn.LayerNorm)
        and norm.weight is not None
        and norm.bias is not None
    )


def class_token_attention(
    attn: nn.MultiheadAttention, norm: nn.LayerNorm, tokens: torch.Tensor
) -> torch.Tensor:
    """attn(q, k, v) with q the class token of norm(tokens) and k = v = norm(tokens), (N, 1, W),
    without projecting every token. Per head, q·(W_k x + b_k) = (W_kᵀ q)·x + q·b_k, and the
    last term, the same for every token, drops out of the softmax; the softmax-weighted sum of
    W_v x + b_v is W_v (Σ a x) + b_v. So the query goes to the tokens' width instead of the
    tokens to the heads' (T·W·H operations instead of T·W²), and the norm's scale and shift
    fold the same way: frozen tokens' parameter-free normalisation needs no gradient."""
    width, heads = attn.embed_dim, attn.num_heads
    head_width = width // heads
    normalised = nn.functional.layer_norm(tokens, (width,), eps=norm.eps)
    w_q, w_k, w_v = attn.in_proj_weight.split(width)
    b_q, _, b_v = attn.in_proj_bias.split(width)
    query = (norm(tokens[:, 0]) @ w_q.T + b_q).view(-1, heads, head_width)
    folded = torch.einsum("nhd,hde->nhe", query, w_k.view(heads, head_width, width))
    scores = torch.einsum("nhe,nte->nht", folded * (norm.weight / head_width**0.5), normalised)
    mixed = torch.einsum("nht,nte->nhe", torch.softmax(scores, dim=-1), normalised)
    mixed = mixed * norm.weight + norm.bias
    values = torch.einsum("nhe,hde->nhd", mixed, w_v.view(heads, head_width, width))
    return attn.out_proj((values + b_v.view(heads, head_width)).reshape(-1, 1, width))


IMAGE_TOWER_TOP_FILE = "image_tower_top.safetensors"


def save_image_tower_top(image_top: ImageTowerTop, path: Path) -> None:
    from safetensors.torch import save_file

    state = {key: tensor.detach().contiguous() for key, tensor in image_top.state_dict().items()}
    save_file(state, str(path), metadata={"block_count": str(image_top.block_count)})


def load_image_tower_top(path: Path, backbone: Backbone) -> ImageTowerTop:
    """A model version's tuned blocks, on top of the backbone it was trained from."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        block_count = int(handle.metadata()["block_count"])
    image_top = ImageTowerTop(backbone.model.visual, block_count)
    image_top.load_state_dict(load_file(str(path)))
    return image_top.eval()


@torch.inference_mode()
def trunk_tokens(visual: nn.Module, images: torch.Tensor, frozen_blocks: int) -> torch.Tensor:
    """The image tower's tokens after its first `frozen_blocks` blocks, (N, T, W)."""
    x = visual._embeds(images)
    for block in visual.transformer.resblocks[:frozen_blocks]:
        x = block(x)
    return x
