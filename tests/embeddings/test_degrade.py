"""The degradations of the robustness study: each keeps the image's size, is the same for the
same seed, and does what its name says, measurably."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from embeddings.engine.degrade import (
    DEGRADATIONS,
    blur,
    degrade_files,
    jpeg,
    low_resolution,
    phone_photo,
)


def packshot(width: int = 120, height: int = 168) -> Image.Image:
    """A striped red garment on a white studio backdrop, as catalog photos are."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, 90, 140), fill=(190, 20, 30))
    for y in range(32, 140, 6):
        draw.line((30, y, 90, y), fill=(20, 20, 120), width=2)
    return image


def detail(image: Image.Image) -> float:
    """High-frequency energy: the mean absolute difference between neighbouring pixels."""
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    return float(np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean())


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_every_degradation_keeps_the_size_and_is_the_same_for_a_seed(name):
    degrade = DEGRADATIONS[name]
    original = packshot()
    first, again = degrade(original, 7), degrade(original, 7)
    assert first.size == original.size and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(original))


def test_blur_and_low_resolution_remove_detail_and_heavy_jpeg_distorts():
    original = packshot()
    assert detail(blur(2.0)(original, 0)) < 0.6 * detail(original)
    assert detail(low_resolution(24)(original, 0)) < 0.6 * detail(original)
    error = np.abs(
        np.asarray(jpeg(10)(original, 0), dtype=np.int16) - np.asarray(original, dtype=np.int16)
    )
    mild = np.abs(
        np.asarray(jpeg(95)(original, 0), dtype=np.int16) - np.asarray(original, dtype=np.int16)
    )
    assert error.mean() > 1.4 * mild.mean()  # both lose colour detail (4:2:0); q10 much more


def test_a_phone_photo_puts_the_product_on_a_surface_and_varies_by_seed():
    original = packshot()
    photo = np.asarray(phone_photo(original, 1), dtype=np.int16)
    # The white studio backdrop is gone: the corners show the surface.
    corners = np.stack([photo[2, 2], photo[2, -3], photo[-3, 2], photo[-3, -3]])
    assert (corners.min(axis=1) < 230).all()
    # The product is still there: red pixels cover a good part of the frame, less than before.
    red = (photo[..., 0] > 120) & (photo[..., 1] < 90)
    before = np.asarray(original)
    red_before = (before[..., 0] > 120) & (before[..., 1] < 90)
    assert 0.2 * red_before.mean() < red.mean() < red_before.mean()
    assert not np.array_equal(photo, np.asarray(phone_photo(original, 2), dtype=np.int16))


def test_degraded_copies_are_written_in_order(tmp_path):
    sources = []
    for number in range(3):
        path = tmp_path / f"source{number}.jpg"
        packshot(100 + 10 * number, 140).save(path)
        sources.append(path)
    written = degrade_files(sources, blur(1.0), tmp_path / "blurred")
    assert [Image.open(path).size for path in written] == [(100, 140), (110, 140), (120, 140)]
    with Image.open(sources[1]) as source:
        expected = np.asarray(blur(1.0)(source, 1))
    assert np.array_equal(np.asarray(Image.open(written[1])), expected)
