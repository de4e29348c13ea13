"""Batch encoding of product images and titles with a backbone into L2-normalised vectors."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .backbone import Backbone, ImageTowerTop, trunk_tokens
from .progress import Progress, no_progress


class ImageFiles(Dataset):
    def __init__(self, paths: Sequence[Path], preprocess) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            return self.preprocess(image.convert("RGB"))


def _normalised(vectors: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(vectors.float(), dim=-1).numpy().astype(np.float32)


@torch.inference_mode()
def encode_images(
    backbone: Backbone,
    paths: Sequence[Path],
    batch_size: int = 64,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Embed image files; returns an (N, D) float32 array of unit vectors in input order."""
    backbone.model.eval()
    loader = DataLoader(ImageFiles(paths, backbone.preprocess), batch_size=batch_size)
    chunks: list[np.ndarray] = []
    done = 0
    for batch in loader:
        chunks.append(_normalised(backbone.model.encode_image(batch)))
        done += len(batch)
        progress("embedding images", done, len(paths))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


@torch.inference_mode()
def encode_trunk_tokens(
    backbone: Backbone,
    paths: Sequence[Path],
    frozen_blocks: int,
    batch_size: int = 64,
    progress: Progress = no_progress,
) -> torch.Tensor:
    """The image tower's tokens after its frozen blocks, for fine-tuning the blocks after them
    (`ImageTowerTop`): (N, T, W) float16, half the memory of float32 at no cost in accuracy
    that matters for training."""
    backbone.model.eval()
    loader = DataLoader(ImageFiles(paths, backbone.preprocess), batch_size=batch_size)
    chunks: list[torch.Tensor] = []
    for batch in loader:
        chunks.append(trunk_tokens(backbone.model.visual, batch, frozen_blocks).half())
        progress("embedding images", sum(len(c) for c in chunks), len(paths))
    return torch.cat(chunks)


@torch.inference_mode()
def image_vectors_from_tokens(
    image_top: ImageTowerTop, tokens: torch.Tensor, batch_size: int = 512
) -> np.ndarray:
    """Unit image vectors from trunk tokens through the tower's top, (N, D) float32."""
    image_top.eval()
    return np.concatenate(
        [_normalised(image_top(chunk.float())) for chunk in tokens.split(batch_size)]
    )


@torch.inference_mode()
def encode_texts(
    backbone: Backbone,
    texts: Sequence[str],
    batch_size: int = 256,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Embed texts (titles); returns an (N, D) float32 array of unit vectors in input order."""
    backbone.model.eval()
    chunks: list[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        tokens = backbone.tokenizer(list(texts[start : start + batch_size]))
        chunks.append(_normalised(backbone.model.encode_text(tokens)))
        progress("embedding titles", min(start + batch_size, len(texts)), len(texts))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def encode_items(
    backbone: Backbone,
    image_paths: Sequence[Path],
    titles: Sequence[str],
    progress: Progress = no_progress,
    image_vectors: np.ndarray | None = None,
) -> np.ndarray:
    """An item is its image and its title: the two unit vectors side by side, (N, 2D).
    `image_vectors`, when given (e.g. from a cache), are used instead of encoding the images."""
    if len(image_paths) != len(titles):
        raise ValueError(f"{len(image_paths)} images but {len(titles)} titles")
    if image_vectors is None:
        image_vectors = encode_images(backbone, image_paths, progress=progress)
    texts = encode_texts(backbone, titles, progress=progress)
    return np.concatenate([image_vectors, texts], axis=1)
