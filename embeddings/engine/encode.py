"""Batch encoding of product images and titles with a backbone into L2-normalised vectors."""

import copy
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .backbone import Backbone, ImageTowerTop, trunk_tokens
from .progress import Progress, no_progress


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), not by emulation."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and supported and supported())


CPU = torch.device("cpu")


def embedding_device(name: str = "auto") -> torch.device:
    """Where images are embedded: 'cpu', 'cuda', or 'auto' (CUDA when this process sees a
    device, as a worker on a GPU machine does). Asking for 'cuda' without one is an error, not
    a silent fall back to the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown embedding device {name!r}: auto, cpu or cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "Embedding on 'cuda' was asked for (OUTFITS_EMBEDDING_DEVICE), but this process "
            "sees no CUDA device (torch.cuda.is_available() is False): check the GPU driver, "
            "or use 'auto' or 'cpu'."
        )
    return torch.device(name)


def inference_tower(
    visual: nn.Module, precision: str = "auto", device: torch.device = CPU
) -> tuple[nn.Module, torch.dtype]:
    """The image tower to embed with on `device` and its input dtype. 'auto': on a CPU, a
    bfloat16 copy where the CPU computes bfloat16 natively (about 2× float32's images/s,
    cosine ≥ 0.9999 to its vectors: benchmarks/embedding.py), else the float32 tower; on a GPU,
    a float16 copy (every CUDA GPU computes it natively). 'float32' or 'bfloat16' to choose."""
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"unknown precision {precision!r}: auto, float32 or bfloat16")
    if device.type == "cuda":
        dtype = {"auto": torch.float16, "float32": torch.float32}.get(precision, torch.bfloat16)
        return copy.deepcopy(visual).to(device, dtype), dtype
    if precision == "bfloat16" or (precision == "auto" and native_bfloat16()):
        return copy.deepcopy(visual).to(torch.bfloat16), torch.bfloat16
    return visual, torch.float32


def input_side(visual: nn.Module) -> int:
    size = getattr(visual, "image_size", 224)
    return int(size if isinstance(size, int) else min(size))


def decode(path: Path, preprocess, side: int) -> torch.Tensor:
    with Image.open(path) as image:
        # A large JPEG is decoded straight at a reduced scale (1/2, 1/4 or 1/8), still at least
        # twice the model's input so the antialiased resize after it decides the pixels: a
        # fraction of the work for a 1,000-pixel catalog photo, the same pixels as a full
        # decode for a small one (decoded right at the input size, vectors differ by 1e-2).
        image.draft("RGB", (2 * side, 2 * side))
        return preprocess(image.convert("RGB"))


# Threads decoding the next batch while the model embeds this one. Two, not one: Pillow
# releases the GIL while it decodes and resizes, and the offline backbone's model is so small
# that a single decoding thread bounds it (benchmarks/embedding.py: 2,048 photos, 292 → 361
# images/s); for a large model decoding is a few percent of the time either way.
DECODE_THREADS = 2


def decoded_batches(
    paths: Sequence[Path], preprocess, side: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """Batches of preprocessed images, in order. The next batch is decoded, an image per task,
    in threads while the caller embeds this one: Pillow and torch release the GIL, and
    threads, unlike a DataLoader's worker processes, also run inside a Celery worker."""
    chunks = [paths[start : start + batch_size] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as decoders:

        def submitted(chunk: Sequence[Path]) -> list[Future[torch.Tensor]]:
            return [decoders.submit(decode, path, preprocess, side) for path in chunk]

        upcoming = [submitted(chunk) for chunk in chunks[:1]]
        for number in range(len(chunks)):
            if number + 1 < len(chunks):
                upcoming.append(submitted(chunks[number + 1]))
            yield torch.stack([image.result() for image in upcoming.pop(0)])


def _normalised(vectors: torch.Tensor) -> np.ndarray:
    normalised = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return normalised.cpu().numpy().astype(np.float32)


@torch.inference_mode()
def encode_images(
    backbone: Backbone,
    paths: Sequence[Path],
    batch_size: int = 32,
    progress: Progress = no_progress,
    precision: str = "auto",
    device: str = "cpu",
) -> np.ndarray:
    """Embed image files on `device` (embedding_device); returns an (N, D) float32 array of
    unit vectors in input order."""
    visual = backbone.model.visual.eval()
    on = embedding_device(device)
    tower, dtype = inference_tower(visual, precision, on)
    chunks: list[np.ndarray] = []
    done = 0
    for batch in decoded_batches(paths, backbone.preprocess, input_side(visual), batch_size):
        chunks.append(_normalised(tower(batch.to(on, dtype))))
        done += len(batch)
        progress("embedding images", done, len(paths))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


@torch.inference_mode()
def encode_trunk_tokens(
    backbone: Backbone,
    paths: Sequence[Path],
    frozen_blocks: int,
    batch_size: int = 32,
    progress: Progress = no_progress,
    precision: str = "auto",
    device: str = "cpu",
) -> torch.Tensor:
    """The image tower's tokens after its frozen blocks, for fine-tuning the blocks after them
    (`ImageTowerTop`): (N, T, W) float16 on the CPU, half the memory of float32 at no cost in
    accuracy that matters for training. Computed on `device` (embedding_device)."""
    visual = backbone.model.visual.eval()
    on = embedding_device(device)
    tower, dtype = inference_tower(visual, precision, on)
    chunks: list[torch.Tensor] = []
    for batch in decoded_batches(paths, backbone.preprocess, input_side(visual), batch_size):
        chunks.append(trunk_tokens(tower, batch.to(on, dtype), frozen_blocks).half().cpu())
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
