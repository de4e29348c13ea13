"""How the demo catalog's products look: garment silhouettes drawn in unit coordinates,
filled with a colour and a pattern (Pillow, no downloads). catalog/demo_catalog.py decides
what each product is; this draws it."""

import math
import random
from collections.abc import Callable, Sequence

from PIL import Image, ImageChops, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
UnitPoint = tuple[float, float]
UnitBox = tuple[float, float, float, float]


def luminance(rgb: RGB) -> float:
    red, green, blue = rgb
    return 0.299 * red + 0.587 * green + 0.114 * blue


def shade(rgb: RGB, factor: float) -> RGB:
    red, green, blue = (max(0, min(255, round(channel * factor))) for channel in rgb)
    return red, green, blue


def lighten(rgb: RGB, amount: float) -> RGB:
    red, green, blue = (round(channel + (255 - channel) * amount) for channel in rgb)
    return red, green, blue


def _blend(first: RGB, second: RGB, weight: float) -> RGB:
    pairs = zip(first, second, strict=True)
    red, green, blue = (round(a * (1 - weight) + b * weight) for a, b in pairs)
    return red, green, blue


class _SilhouetteCanvas:
    """Draws a garment given in unit coordinates (0..1, y down) onto masks at twice the image
    size (downsampled later for smooth edges), with a per-product scale and offset."""

    SUPERSAMPLE = 2

    def __init__(self, size: int, scale: float, shift: UnitPoint) -> None:
        self.size = size
        self.pixels = size * self.SUPERSAMPLE
        self.scale = scale
        self.shift = shift
        self.fill = Image.new("L", (self.pixels, self.pixels), 0)  # the silhouette
        self.details = Image.new("L", (self.pixels, self.pixels), 0)  # seams, lapels, laces
        self.trim_mask = Image.new("L", (self.pixels, self.pixels), 0)  # soles, buckles, beads
        self.trim_layer = Image.new("RGB", (self.pixels, self.pixels), (0, 0, 0))
        self._fill = ImageDraw.Draw(self.fill)
        self._details = ImageDraw.Draw(self.details)
        self._trim_mask = ImageDraw.Draw(self.trim_mask)
        self._trim_layer = ImageDraw.Draw(self.trim_layer)

    def _point(self, point: UnitPoint) -> tuple[float, float]:
        x, y = point
        return (
            (0.5 + (x - 0.5) * self.scale + self.shift[0]) * self.pixels,
            (0.5 + (y - 0.5) * self.scale + self.shift[1]) * self.pixels,
        )

    def _points(self, points: Sequence[UnitPoint]) -> list[tuple[float, float]]:
        return [self._point(point) for point in points]

    def _box(self, box: UnitBox) -> list[float]:
        left, top = self._point((box[0], box[1]))
        right, bottom = self._point((box[2], box[3]))
        return [left, top, right, bottom]

    def _width(self, width: float) -> int:
        return max(1, round(width * self.scale * self.pixels))

    def polygon(self, points: Sequence[UnitPoint], cut: bool = False) -> None:
        self._fill.polygon(self._points(points), fill=0 if cut else 255)

    def ellipse(self, box: UnitBox, ring: float = 0.0) -> None:
        """A filled ellipse, or only its rim `ring` wide (bracelets, bag handles, straps)."""
        if ring:
            self._fill.ellipse(self._box(box), outline=255, width=self._width(ring))
        else:
            self._fill.ellipse(self._box(box), fill=255)

    def rounded_box(self, box: UnitBox, radius: float) -> None:
        self._fill.rounded_rectangle(self._box(box), radius=self._width(radius), fill=255)

    def stroke(self, points: Sequence[UnitPoint], width: float) -> None:
        self._fill.line(self._points(points), fill=255, width=self._width(width), joint="curve")

    def detail(self, points: Sequence[UnitPoint], width: float = 0.012) -> None:
        self._details.line(self._points(points), fill=255, width=self._width(width))

    def detail_ellipse(self, box: UnitBox, width: float = 0.012, filled: bool = False) -> None:
        if filled:
            self._details.ellipse(self._box(box), fill=255)
        else:
            self._details.ellipse(self._box(box), outline=255, width=self._width(width))

    def detail_arc(self, box: UnitBox, start: float, end: float, width: float = 0.012) -> None:
        self._details.arc(self._box(box), start, end, fill=255, width=self._width(width))

    def trim_polygon(self, points: Sequence[UnitPoint], colour: RGB) -> None:
        self._trim_mask.polygon(self._points(points), fill=255)
        self._trim_layer.polygon(self._points(points), fill=colour)

    def trim_ellipse(self, box: UnitBox, colour: RGB) -> None:
        self._trim_mask.ellipse(self._box(box), fill=255)
        self._trim_layer.ellipse(self._box(box), fill=colour)

    def downsampled(self) -> tuple[Image.Image, Image.Image, Image.Image, Image.Image]:
        size = (self.size, self.size)
        return (
            self.fill.resize(size, Image.Resampling.BOX),
            self.details.resize(size, Image.Resampling.BOX),
            self.trim_mask.resize(size, Image.Resampling.BOX),
            self.trim_layer.resize(size, Image.Resampling.BOX),
        )


SOLE_DARK: RGB = (52, 46, 42)
SOLE_LIGHT: RGB = (232, 232, 226)
METAL: RGB = (206, 176, 92)


def _mirror(points: Sequence[UnitPoint]) -> list[UnitPoint]:
    """The left half of a symmetric garment followed by its mirror image, as one outline."""
    return [*points, *[(1 - x, y) for x, y in reversed(points)]]


def _draw_tshirt(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.24),
                (0.43, 0.22),
                (0.38, 0.17),
                (0.20, 0.24),
                (0.09, 0.42),
                (0.21, 0.48),
                (0.28, 0.39),
                (0.28, 0.86),
                (0.5, 0.86),
            ]
        )
    )
    canvas.detail_arc((0.38, 0.08, 0.62, 0.25), 20, 160)


def _draw_blouse(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.27),
                (0.44, 0.24),
                (0.39, 0.17),
                (0.24, 0.23),
                (0.10, 0.62),
                (0.21, 0.66),
                (0.31, 0.42),
                (0.31, 0.66),
                (0.24, 0.84),
                (0.5, 0.84),
            ]
        )
    )
    canvas.detail([(0.24, 0.84), (0.31, 0.66), (0.69, 0.66), (0.76, 0.84)])
    canvas.detail_ellipse((0.47, 0.29, 0.53, 0.34), filled=True)


def _draw_shirt(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.17),
                (0.37, 0.16),
                (0.22, 0.22),
                (0.11, 0.79),
                (0.21, 0.81),
                (0.29, 0.42),
                (0.29, 0.87),
                (0.5, 0.87),
            ]
        )
    )
    canvas.detail([(0.39, 0.16), (0.45, 0.29), (0.5, 0.22), (0.55, 0.29), (0.61, 0.16)])
    canvas.detail([(0.5, 0.24), (0.5, 0.87)])
    for y in (0.36, 0.48, 0.60, 0.72):
        canvas.detail_ellipse((0.475, y, 0.525, y + 0.04), filled=True)
    canvas.detail([(0.12, 0.73), (0.22, 0.75)])
    canvas.detail([(0.88, 0.73), (0.78, 0.75)])


def _draw_sweater(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.23),
                (0.40, 0.19),
                (0.24, 0.22),
                (0.14, 0.40),
                (0.10, 0.82),
                (0.21, 0.83),
                (0.27, 0.46),
                (0.27, 0.86),
                (0.5, 0.86),
            ]
        )
    )
    canvas.detail_arc((0.38, 0.10, 0.62, 0.27), 15, 165, width=0.03)
    canvas.detail([(0.27, 0.80), (0.73, 0.80)], width=0.02)
    canvas.detail([(0.10, 0.77), (0.21, 0.78)], width=0.02)
    canvas.detail([(0.90, 0.77), (0.79, 0.78)], width=0.02)


def _draw_trousers(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror([(0.5, 0.36), (0.45, 0.90), (0.31, 0.90), (0.29, 0.30), (0.32, 0.13), (0.5, 0.13)])
    )
    canvas.detail([(0.32, 0.19), (0.68, 0.19)])
    canvas.detail([(0.38, 0.25), (0.38, 0.88)], width=0.008)
    canvas.detail([(0.62, 0.25), (0.62, 0.88)], width=0.008)


def _draw_jeans(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror([(0.5, 0.37), (0.46, 0.90), (0.34, 0.90), (0.30, 0.30), (0.32, 0.13), (0.5, 0.13)])
    )
    canvas.detail([(0.32, 0.19), (0.68, 0.19)])
    canvas.detail([(0.5, 0.19), (0.5, 0.33)])
    canvas.detail_arc((0.24, 0.12, 0.44, 0.32), 0, 90)
    canvas.detail_arc((0.56, 0.12, 0.76, 0.32), 90, 180)


def _draw_shorts(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror([(0.5, 0.46), (0.44, 0.66), (0.21, 0.63), (0.24, 0.38), (0.28, 0.22), (0.5, 0.22)])
    )
    canvas.detail([(0.28, 0.28), (0.72, 0.28)])


def _draw_skirt(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(_mirror([(0.5, 0.18), (0.36, 0.18), (0.19, 0.78), (0.34, 0.81), (0.5, 0.82)]))
    canvas.detail([(0.36, 0.24), (0.64, 0.24)])
    for top, bottom in ((0.43, 0.37), (0.57, 0.63)):
        canvas.detail([(top, 0.26), (bottom, 0.78)], width=0.008)


def _draw_dress(canvas: _SilhouetteCanvas, hem: float, flare: float) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.23),
                (0.44, 0.22),
                (0.42, 0.10),
                (0.39, 0.10),
                (0.36, 0.27),
                (0.40, 0.42),
                (0.5 - flare, hem),
                (0.5, hem + 0.02),
            ]
        )
    )
    canvas.detail([(0.40, 0.42), (0.60, 0.42)])


def _draw_midi_dress(canvas: _SilhouetteCanvas) -> None:
    _draw_dress(canvas, hem=0.78, flare=0.26)


def _draw_maxi_dress(canvas: _SilhouetteCanvas) -> None:
    _draw_dress(canvas, hem=0.93, flare=0.31)


def _draw_shirt_dress(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.13),
                (0.38, 0.12),
                (0.24, 0.18),
                (0.15, 0.35),
                (0.26, 0.39),
                (0.31, 0.31),
                (0.30, 0.88),
                (0.5, 0.88),
            ]
        )
    )
    canvas.detail([(0.40, 0.12), (0.45, 0.23), (0.5, 0.17), (0.55, 0.23), (0.60, 0.12)])
    canvas.detail([(0.5, 0.19), (0.5, 0.88)])
    canvas.detail([(0.31, 0.47), (0.69, 0.47)], width=0.025)


def _draw_coat(canvas: _SilhouetteCanvas, hem: float, hem_flare: float) -> None:
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.15),
                (0.37, 0.14),
                (0.21, 0.21),
                (0.11, 0.78),
                (0.21, 0.80),
                (0.28, 0.42),
                (0.5 - hem_flare, hem),
                (0.5, hem),
            ]
        )
    )
    # Notched lapels down to the first button.
    canvas.detail([(0.38, 0.14), (0.42, 0.28), (0.38, 0.31), (0.5, 0.52)])
    canvas.detail([(0.62, 0.14), (0.58, 0.28), (0.62, 0.31), (0.5, 0.52)])
    canvas.detail([(0.5, 0.52), (0.5, hem)])


def _draw_blazer(canvas: _SilhouetteCanvas) -> None:
    _draw_coat(canvas, hem=0.80, hem_flare=0.22)
    for y in (0.56, 0.66):
        canvas.detail_ellipse((0.475, y, 0.525, y + 0.04), filled=True)
    canvas.detail([(0.30, 0.66), (0.42, 0.66)])
    canvas.detail([(0.58, 0.66), (0.70, 0.66)])


def _draw_trench_coat(canvas: _SilhouetteCanvas) -> None:
    _draw_coat(canvas, hem=0.94, hem_flare=0.26)
    canvas.detail([(0.27, 0.50), (0.73, 0.50)], width=0.035)
    canvas.trim_polygon([(0.45, 0.485), (0.55, 0.485), (0.55, 0.515), (0.45, 0.515)], METAL)
    for x in (0.43, 0.57):
        for y in (0.36, 0.44):
            canvas.detail_ellipse((x - 0.02, y, x + 0.02, y + 0.04), filled=True)


def _draw_parka(canvas: _SilhouetteCanvas) -> None:
    canvas.ellipse((0.35, 0.04, 0.65, 0.30))
    canvas.polygon(
        _mirror(
            [
                (0.5, 0.18),
                (0.34, 0.17),
                (0.19, 0.24),
                (0.10, 0.80),
                (0.22, 0.82),
                (0.27, 0.46),
                (0.25, 0.88),
                (0.5, 0.88),
            ]
        )
    )
    canvas.detail_ellipse((0.41, 0.10, 0.59, 0.26), width=0.02)
    canvas.detail([(0.5, 0.26), (0.5, 0.88)], width=0.015)
    for y in (0.40, 0.55, 0.70):
        canvas.detail([(0.27, y), (0.73, y)], width=0.008)
    canvas.detail([(0.31, 0.62), (0.42, 0.62)])
    canvas.detail([(0.58, 0.62), (0.69, 0.62)])


def _draw_sneakers(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        [
            (0.10, 0.70),
            (0.09, 0.56),
            (0.12, 0.46),
            (0.20, 0.44),
            (0.30, 0.48),
            (0.38, 0.42),
            (0.46, 0.34),
            (0.53, 0.34),
            (0.57, 0.41),
            (0.67, 0.47),
            (0.79, 0.52),
            (0.87, 0.55),
            (0.92, 0.60),
            (0.93, 0.70),
        ]
    )
    canvas.trim_polygon([(0.08, 0.68), (0.94, 0.68), (0.93, 0.77), (0.09, 0.77)], SOLE_LIGHT)
    for step in range(4):  # eyelets along the lacing
        x, y = 0.48 + step * 0.055, 0.42 + step * 0.03
        canvas.detail_ellipse((x - 0.017, y - 0.017, x + 0.017, y + 0.017), filled=True)
    canvas.detail([(0.24, 0.55), (0.38, 0.62), (0.72, 0.53)], width=0.025)  # side stripe


def _draw_boots(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        [
            (0.30, 0.10),
            (0.58, 0.10),
            (0.59, 0.56),
            (0.80, 0.66),
            (0.88, 0.74),
            (0.88, 0.80),
            (0.28, 0.80),
            (0.29, 0.50),
        ]
    )
    canvas.trim_polygon([(0.27, 0.79), (0.89, 0.79), (0.89, 0.85), (0.27, 0.85)], SOLE_DARK)
    canvas.trim_polygon([(0.27, 0.84), (0.40, 0.84), (0.40, 0.90), (0.28, 0.90)], SOLE_DARK)
    canvas.detail([(0.30, 0.16), (0.58, 0.16)])


def _draw_heels(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        [
            (0.18, 0.38),
            (0.25, 0.38),
            (0.40, 0.50),
            (0.62, 0.53),
            (0.82, 0.62),
            (0.90, 0.70),
            (0.86, 0.75),
            (0.66, 0.75),
            (0.44, 0.63),
            (0.30, 0.60),
            (0.22, 0.60),
        ]
    )
    canvas.trim_polygon([(0.22, 0.58), (0.30, 0.58), (0.27, 0.88), (0.24, 0.88)], SOLE_DARK)


def _draw_loafers(canvas: _SilhouetteCanvas) -> None:
    canvas.polygon(
        [
            (0.10, 0.72),
            (0.10, 0.55),
            (0.15, 0.49),
            (0.30, 0.53),
            (0.44, 0.49),
            (0.62, 0.47),
            (0.78, 0.52),
            (0.89, 0.59),
            (0.92, 0.72),
        ]
    )
    canvas.trim_polygon([(0.09, 0.71), (0.93, 0.71), (0.92, 0.77), (0.10, 0.77)], SOLE_DARK)
    canvas.trim_polygon([(0.09, 0.71), (0.24, 0.71), (0.24, 0.80), (0.10, 0.80)], SOLE_DARK)
    canvas.detail([(0.44, 0.50), (0.50, 0.62), (0.82, 0.62)])  # the apron seam
    canvas.detail([(0.45, 0.55), (0.58, 0.53)], width=0.03)  # the penny strap


def _draw_tote(canvas: _SilhouetteCanvas) -> None:
    canvas.ellipse((0.32, 0.14, 0.50, 0.56), ring=0.035)
    canvas.ellipse((0.50, 0.14, 0.68, 0.56), ring=0.035)
    canvas.polygon([(0.22, 0.38), (0.78, 0.38), (0.84, 0.86), (0.16, 0.86)])
    canvas.detail([(0.23, 0.44), (0.77, 0.44)], width=0.008)


def _draw_clutch(canvas: _SilhouetteCanvas) -> None:
    canvas.rounded_box((0.14, 0.38, 0.86, 0.70), radius=0.04)
    canvas.detail([(0.14, 0.40), (0.50, 0.58), (0.86, 0.40)])
    canvas.trim_ellipse((0.47, 0.55, 0.53, 0.61), METAL)


def _draw_backpack(canvas: _SilhouetteCanvas) -> None:
    canvas.ellipse((0.40, 0.10, 0.60, 0.30), ring=0.035)
    canvas.rounded_box((0.24, 0.20, 0.76, 0.88), radius=0.14)
    canvas.detail_arc((0.30, 0.52, 0.70, 0.86), 0, 360)
    canvas.detail([(0.30, 0.62), (0.70, 0.62)])
    canvas.detail([(0.26, 0.40), (0.74, 0.40)], width=0.008)


def _draw_crossbody_bag(canvas: _SilhouetteCanvas) -> None:
    canvas.ellipse((0.20, 0.06, 0.80, 0.76), ring=0.025)
    canvas.rounded_box((0.24, 0.50, 0.76, 0.86), radius=0.06)
    canvas.detail([(0.24, 0.53), (0.24, 0.66), (0.76, 0.66), (0.76, 0.53)])
    canvas.trim_ellipse((0.47, 0.63, 0.53, 0.69), METAL)


def _draw_necklace(canvas: _SilhouetteCanvas) -> None:
    for step in range(15):
        angle = math.radians(-15 + step * 210 / 14)  # beads along the lower part of the loop
        x, y = 0.5 + 0.30 * math.cos(angle), 0.36 + 0.26 * math.sin(angle)
        canvas.ellipse((x - 0.032, y - 0.032, x + 0.032, y + 0.032))
    chain = [
        (0.5 + 0.30 * math.cos(math.radians(a)), 0.36 + 0.26 * math.sin(math.radians(a)))
        for a in range(195, 350, 8)
    ]
    canvas.stroke(chain, 0.02)
    canvas.polygon([(0.5, 0.60), (0.63, 0.74), (0.5, 0.92), (0.37, 0.74)])
    canvas.trim_ellipse((0.475, 0.585, 0.525, 0.635), METAL)


def _draw_earrings(canvas: _SilhouetteCanvas) -> None:
    for centre in (0.31, 0.69):
        canvas.trim_ellipse((centre - 0.04, 0.14, centre + 0.04, 0.22), METAL)
        canvas.stroke([(centre, 0.20), (centre, 0.36)], 0.02)
        canvas.polygon(
            [
                (centre, 0.32),
                (centre + 0.13, 0.62),
                (centre + 0.09, 0.76),
                (centre, 0.82),
                (centre - 0.09, 0.76),
                (centre - 0.13, 0.62),
            ]
        )


def _draw_bracelet(canvas: _SilhouetteCanvas) -> None:
    canvas.ellipse((0.16, 0.24, 0.84, 0.80), ring=0.13)
    canvas.detail_ellipse((0.29, 0.37, 0.71, 0.67), width=0.01)


SILHOUETTES: dict[str, Callable[[_SilhouetteCanvas], None]] = {
    "T-shirt": _draw_tshirt,
    "blouse": _draw_blouse,
    "shirt": _draw_shirt,
    "sweater": _draw_sweater,
    "trousers": _draw_trousers,
    "jeans": _draw_jeans,
    "skirt": _draw_skirt,
    "shorts": _draw_shorts,
    "midi dress": _draw_midi_dress,
    "maxi dress": _draw_maxi_dress,
    "shirt dress": _draw_shirt_dress,
    "blazer": _draw_blazer,
    "trench coat": _draw_trench_coat,
    "parka": _draw_parka,
    "sneakers": _draw_sneakers,
    "boots": _draw_boots,
    "heels": _draw_heels,
    "loafers": _draw_loafers,
    "tote": _draw_tote,
    "clutch": _draw_clutch,
    "backpack": _draw_backpack,
    "crossbody bag": _draw_crossbody_bag,
    "necklace": _draw_necklace,
    "earrings": _draw_earrings,
    "bracelet": _draw_bracelet,
}


# Patterns are drawn over the whole canvas; the silhouette mask later keeps only its inside.
PatternPainter = Callable[[ImageDraw.ImageDraw, int, RGB, RGB, random.Random], None]


def _paint_plain(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    pass


def _paint_pinstripe(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    spacing = max(4, round(size / rng.uniform(14, 18)))
    for x in range(rng.randrange(spacing), size, spacing):
        draw.line([(x, 0), (x, size)], fill=accent, width=max(1, size // 128))


def _paint_striped(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    band = max(3, round(size / rng.uniform(11, 14)))
    for y in range(rng.randrange(2 * band), size, 2 * band):
        draw.rectangle([0, y, size, y + band - 1], fill=accent)


def _paint_colour_block(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    split = round(size * rng.uniform(0.50, 0.58))
    draw.rectangle([0, split, size, size], fill=accent)
    stripe = max(2, size // 40)
    draw.rectangle([0, split - 3 * stripe, size, split - 2 * stripe], fill=accent)


def _paint_polka_dot(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    spacing = size / rng.uniform(9, 11)
    radius = spacing * 0.22
    for row in range(-1, math.ceil(size / spacing) + 1):
        offset = spacing / 2 if row % 2 else 0.0  # staggered rows
        for column in range(-1, math.ceil(size / spacing) + 1):
            x, y = column * spacing + offset, row * spacing
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=accent)


def _paint_floral(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    spacing = size / rng.uniform(5.5, 6.5)
    petal = spacing * 0.17
    centre_colour = shade(accent, 0.6) if luminance(accent) > 110 else lighten(accent, 0.6)
    for row in range(math.ceil(size / spacing) + 1):
        for column in range(math.ceil(size / spacing) + 1):
            x = column * spacing + rng.uniform(-0.2, 0.2) * spacing + (row % 2) * spacing / 2
            y = row * spacing + rng.uniform(-0.2, 0.2) * spacing
            turn = rng.uniform(0, math.tau)
            for index in range(5):
                angle = turn + index * math.tau / 5
                px, py = x + 1.6 * petal * math.cos(angle), y + 1.6 * petal * math.sin(angle)
                draw.ellipse([px - petal, py - petal, px + petal, py + petal], fill=accent)
            draw.ellipse([x - petal, y - petal, x + petal, y + petal], fill=centre_colour)


def _paint_gingham(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    cell = max(3, round(size / rng.uniform(12, 15)))
    light = lighten(main, 0.75)
    half = _blend(light, accent, 0.5)
    for row in range(size // cell + 1):
        for column in range(size // cell + 1):
            # Gingham: a dark square where both bands cross, half-tone where one does.
            crossing = (row % 2) + (column % 2)
            colour = (light, half, accent)[crossing]
            left, top = column * cell, row * cell
            draw.rectangle([left, top, left + cell - 1, top + cell - 1], fill=colour)


def _paint_check(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    spacing = max(6, round(size / rng.uniform(6, 8)))
    thick = max(2, size // 40)
    thin = _blend(main, accent, 0.5)
    start = rng.randrange(spacing)
    for position in range(start, size, spacing):
        draw.rectangle([position, 0, position + thick - 1, size], fill=accent)
        draw.rectangle([0, position, size, position + thick - 1], fill=accent)
        middle = position + spacing // 2
        draw.line([(middle, 0), (middle, size)], fill=thin, width=1)
        draw.line([(0, middle), (size, middle)], fill=thin, width=1)


def _paint_satin(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    # Soft diagonal sheen: a few wide bands, brightest in the middle.
    centre = rng.uniform(0.3, 0.7) * 2 * size
    for width, amount in ((size // 3, 0.12), (size // 5, 0.24), (size // 12, 0.38)):
        colour = lighten(main, amount)
        draw.line([(centre - size, size), (centre, 0)], fill=colour, width=width)


def _paint_sparkle(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    glint = lighten(accent, 0.5)
    for _ in range(size * size // 90):
        x, y = rng.randrange(size), rng.randrange(size)
        if rng.random() < 0.25:  # a few four-pointed stars among the specks
            arm = max(2, size // 40)
            draw.line([(x - arm, y), (x + arm, y)], fill=glint)
            draw.line([(x, y - arm), (x, y + arm)], fill=glint)
        else:
            draw.rectangle([x, y, x + 1, y + 1], fill=accent)


PATTERN_PAINTERS: dict[str, PatternPainter] = {
    "plain": _paint_plain,
    "pinstripe": _paint_pinstripe,
    "striped": _paint_striped,
    "colour-block": _paint_colour_block,
    "polka-dot": _paint_polka_dot,
    "floral": _paint_floral,
    "gingham": _paint_gingham,
    "check": _paint_check,
    "satin": _paint_satin,
    "sparkle": _paint_sparkle,
}


def draw_product_image(
    sku: str, noun: str, pattern: str, rgb: RGB, accent: RGB, size: int, seed: int
) -> Image.Image:
    """A product's silhouette (`noun`), filled with its colour and `pattern`, on a near-white
    ground."""
    # Seeded per product (a string seed is hashed stably), so jitter does not depend on order.
    rng = random.Random(f"{seed}:{sku}")
    main = shade(rgb, rng.uniform(0.92, 1.06))
    ground = rng.randint(244, 252)
    background: RGB = (ground, ground, ground - rng.randint(0, 4))

    shift = (rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.03))
    canvas = _SilhouetteCanvas(size, scale=rng.uniform(0.84, 1.0), shift=shift)
    SILHOUETTES[noun](canvas)
    fill, details, trim_mask, trim_layer = canvas.downsampled()

    pattern_layer = Image.new("RGB", (size, size), main)
    paint = PATTERN_PAINTERS[pattern]
    paint(ImageDraw.Draw(pattern_layer), size, main, accent, rng)

    image = Image.new("RGB", (size, size), background)
    image.paste(pattern_layer, mask=fill)
    image.paste(trim_layer, mask=trim_mask)
    # A darker outline keeps white and cream items visible on the white ground.
    silhouette = ImageChops.lighter(fill, trim_mask)
    outline = ImageChops.subtract(silhouette.filter(ImageFilter.MaxFilter(3)), silhouette)
    edge_colour = shade(main, 0.55) if luminance(main) > 60 else lighten(main, 0.35)
    image.paste(edge_colour, mask=outline)
    detail_colour = shade(main, 0.6) if luminance(main) > 80 else lighten(main, 0.45)
    image.paste(detail_colour, mask=ImageChops.multiply(details, fill))
    return image
