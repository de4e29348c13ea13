"""Loads the open_clip backbone that embeds product images and titles.

A backbone is named the open_clip way: a model name plus a pretrained source (a tag such as
`laion2b_s34b_b79k`, or a checkpoint file), or an `hf-hub:`/`local-dir:` model. The project
registers its own small configs (model_configs/) so it can build a backbone offline.
"""

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
from PIL import Image

logger = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
OFFLINE_BACKBONE = "outfits-tiny"
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


def create_untrained_backbone(name: str = OFFLINE_BACKBONE, seed: int = 0) -> Backbone:
    """A randomly initialised backbone: the starting point of pretraining, and of unit tests."""
    torch.manual_seed(seed)
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
