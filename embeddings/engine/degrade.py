"""Images as real-world channels deliver them: a feed's heavy JPEG, a blurred or tiny picture,
a shopper's phone photo of the product on a table. The robustness study and the photo-matching
benchmark (benchmarks/) apply them to evaluation items only. Each degradation takes an RGB
image and a seed and returns a new RGB image of the same size, the same for the same seed."""

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

Degradation = Callable[[Image.Image, int], Image.Image]

# The share of pretraining images shown as a phone photo of themselves by default: on the
# Mango split clean quality stays level and a phone photo's FITB rises 9-16 points
# (docs/model.md). Here, not in pretrain.py, so web processes can read it without torch.
PRETRAINING_PHONE_PHOTOS = 0.5


def jpeg(quality: int) -> Degradation:
    """Re-encoded as a JPEG of `quality` (10: the blocks and smeared colour of a cheap feed)."""

    def degrade(image: Image.Image, seed: int) -> Image.Image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")

    return degrade


def blur(radius: float) -> Degradation:
    """A Gaussian blur of `radius` pixels (an out-of-focus photo)."""

    def degrade(image: Image.Image, seed: int) -> Image.Image:
        return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))

    return degrade


def low_resolution(side: int) -> Degradation:
    """Shrunk so its longer side is `side` pixels, then scaled back: a thumbnail blown up."""

    def degrade(image: Image.Image, seed: int) -> Image.Image:
        rgb = image.convert("RGB")
        scale = side / max(rgb.size)
        small = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
            Image.Resampling.BILINEAR,
        )
        return small.resize(rgb.size, Image.Resampling.BICUBIC)

    return degrade


def phone_photo(image: Image.Image, seed: int) -> Image.Image:
    """The product photographed on a surface: shrunk to 55–75% of the frame at an off-centre
    spot, turned a few degrees, on a plain background with a light gradient and sensor noise,
    under a warm or cool cast, saved as a phone's JPEG."""
    rng = np.random.default_rng(seed)
    rgb = image.convert("RGB")
    width, height = rgb.size
    background = _surface(width, height, rng)
    scale = rng.uniform(0.55, 0.75)
    product = rgb.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC
    )
    # The packshot's near-white studio backdrop is not part of the product.
    pixels = np.asarray(product, dtype=np.int16)
    mask = Image.fromarray(((pixels.min(axis=2) < 235) * 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.GaussianBlur(1))
    angle = float(rng.uniform(-8, 8))
    product = product.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    left = int(rng.integers(0, max(1, width - product.width + 1)))
    top = int(rng.integers(0, max(1, height - product.height + 1)))
    background.paste(product, (left, top), mask)
    cast = np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.08, 0.08) * np.array([1.0, 0.2, -1.0])
    brightness = rng.uniform(0.8, 1.15)
    lit = np.asarray(background, dtype=np.float32) * cast * brightness
    lit += rng.normal(0, 4.0, size=lit.shape)
    photo = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))
    return jpeg(75)(photo, seed)


def _surface(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A table top or a wall: a muted colour, lighter towards one corner."""
    colour = rng.uniform(90, 220, size=3)
    ramp = np.linspace(-1, 1, width)[None, :] * rng.uniform(-25, 25) + np.linspace(-1, 1, height)[
        :, None
    ] * rng.uniform(-25, 25)
    surface = colour[None, None, :] + ramp[..., None]
    return Image.fromarray(np.clip(surface, 0, 255).astype(np.uint8))


# The robustness study's degradations, by the name its tables use.
DEGRADATIONS: dict[str, Degradation] = {
    "JPEG quality 10": jpeg(10),
    "blur (radius 2 px)": blur(2.0),
    "low resolution (24 px)": low_resolution(24),
    "phone photo": phone_photo,
}


def degrade_files(
    paths: Sequence[Path], degradation: Degradation, folder: Path, seed: int = 0
) -> list[Path]:
    """Degraded copies of image files in `folder` (lossless PNGs: the degradation is exactly
    what the encoder sees), the n-th with seed + n; returns their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, path in enumerate(paths):
        target = folder / f"{number:06d}.png"
        with Image.open(path) as image:
            degradation(image, seed + number).save(target)
        written.append(target)
    return written
