"""A small synthetic fashion catalog for the demo and the tests: products drawn with Pillow
(no downloads) and stylist-like outfits whose items share a style visible in colour, pattern
and title, so a tiny CLIP-style model trained on it can learn which items go together."""

import csv
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
UnitPoint = tuple[float, float]
UnitBox = tuple[float, float, float, float]

PRODUCTS_HEADER = ("sku", "title", "category", "colour", "price", "in_stock", "image")
OUTFITS_HEADER = ("outfit_id", "sku")
IMAGE_FOLDER = "images"
JPEG_QUALITY = 90

MIXED_STYLE_RATE = 0.10  # products whose pattern comes from another style: a less trivial signal
OFF_STYLE_RATE = 0.05  # outfit items picked regardless of the outfit's style
IN_STOCK_RATE = 0.90
FAVOURED_NOUN_WEIGHT = 3  # how much likelier a style's typical nouns are than the others


@dataclass(frozen=True)
class Style:
    name: str
    colours: dict[str, RGB]  # human name (used in titles and the `colour` column) -> RGB
    patterns: tuple[str, ...]  # keys of PATTERN_WORDS
    favoured_nouns: frozenset[str]


@dataclass(frozen=True)
class Category:
    name: str
    sku_prefix: str
    nouns: tuple[str, ...]
    price_range: tuple[int, int]  # whole currency units; prices end in .99, .95, .50 or .00


CATEGORIES: tuple[Category, ...] = (
    Category("Tops", "TOP", ("T-shirt", "blouse", "shirt", "sweater"), (14, 59)),
    Category("Bottoms", "BOT", ("trousers", "jeans", "skirt", "shorts"), (19, 89)),
    Category("Dresses", "DRE", ("midi dress", "maxi dress", "shirt dress"), (29, 129)),
    Category("Outerwear", "OUT", ("blazer", "trench coat", "parka"), (59, 199)),
    Category("Shoes", "SHO", ("sneakers", "boots", "heels", "loafers"), (29, 149)),
    Category("Bags", "BAG", ("tote", "clutch", "backpack", "crossbody bag"), (19, 129)),
    Category("Jewellery", "JEW", ("necklace", "earrings", "bracelet"), (9, 59)),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(category.name for category in CATEGORIES)

# Pattern key -> the word it adds to a title ("" for plain: "Navy blazer", not "Navy plain blazer").
PATTERN_WORDS: dict[str, str] = {
    "plain": "",
    "pinstripe": "pinstripe",
    "striped": "striped",
    "colour-block": "colour-block",
    "polka-dot": "polka-dot",
    "floral": "floral",
    "gingham": "gingham",
    "check": "check",
    "satin": "satin",
    "sparkle": "sparkle",
}

# Every colour name belongs to exactly one style, so a product's style can be read from `colour`.
STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "classic",
            {
                "Navy": (28, 40, 84),
                "Ivory": (244, 240, 226),
                "Beige": (212, 190, 152),
                "Camel": (176, 130, 80),
            },
            ("plain", "pinstripe"),
            frozenset({"shirt", "trousers", "blazer", "trench coat", "loafers", "tote"}),
        ),
        Style(
            "sporty",
            {
                "Red": (206, 32, 41),
                "White": (250, 250, 250),
                "Grey": (138, 140, 146),
                "Royal blue": (34, 76, 200),
            },
            ("striped", "colour-block"),
            frozenset({"T-shirt", "shorts", "sneakers", "backpack", "parka", "bracelet"}),
        ),
        Style(
            "boho",
            {
                "Olive": (112, 118, 48),
                "Mustard": (214, 160, 30),
                "Rust": (170, 74, 36),
                "Cream": (238, 222, 184),
            },
            ("polka-dot", "floral"),
            frozenset({"blouse", "maxi dress", "boots", "crossbody bag", "earrings"}),
        ),
        Style(
            "pastel",
            {
                "Pink": (246, 168, 190),
                "Lilac": (196, 164, 222),
                "Mint": (160, 224, 196),
                "Sky blue": (150, 200, 240),
            },
            ("gingham", "check"),
            frozenset({"sweater", "skirt", "shirt dress", "sneakers", "tote", "necklace"}),
        ),
        Style(
            "evening",
            {
                "Black": (22, 22, 24),
                "Gold": (212, 172, 58),
                "Burgundy": (120, 22, 46),
                "Silver": (192, 194, 200),
            },
            ("satin", "sparkle"),
            frozenset({"midi dress", "heels", "clutch", "blazer", "earrings", "necklace"}),
        ),
    )
}


@dataclass(frozen=True)
class DemoCatalog:
    products_csv: Path
    outfits_csv: Path
    image_dir: Path
    product_count: int
    outfit_count: int


@dataclass(frozen=True)
class _Product:
    sku: str
    category: str
    style: str  # the style of its colour
    colour: str
    rgb: RGB
    pattern: str
    accent: RGB  # second colour of the pattern, from the pattern's style
    noun: str
    price: str
    in_stock: bool

    @property
    def title(self) -> str:
        words = [self.colour, PATTERN_WORDS[self.pattern], self.noun]
        return " ".join(word for word in words if word)


def generate_demo_catalog(
    out_dir: Path,
    products_per_category: int = 40,
    outfit_count: int = 240,
    seed: int = 7,
    image_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> DemoCatalog:
    """Draw the catalog into `out_dir` (products.csv, outfits.csv, images/); the same arguments
    give the same files byte for byte, and a re-run replaces what an earlier run wrote."""
    if products_per_category < 4:
        raise ValueError(
            f"products_per_category must be at least 4 (got {products_per_category}): "
            "outfits need a choice of items in every category"
        )
    if outfit_count < 1:
        raise ValueError(f"outfit_count must be at least 1 (got {outfit_count})")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels (got {image_size})")

    rng = random.Random(seed)
    products = _make_products(rng, products_per_category)
    cold_start = _choose_cold_start(rng, products)
    outfits = _make_outfits(rng, products, cold_start, outfit_count)

    out_dir = Path(out_dir)
    image_dir = out_dir / IMAGE_FOLDER
    image_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_images(image_dir, {product.sku for product in products})
    for done, product in enumerate(products, start=1):
        image = _draw_product_image(product, image_size, seed)
        image.save(image_dir / f"{product.sku}.jpg", "JPEG", quality=JPEG_QUALITY)
        if progress is not None:
            progress(done, len(products))

    products_csv = out_dir / "products.csv"
    with products_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PRODUCTS_HEADER)
        # Categories taken in turn, as a season's arrivals come: the shop lists the newest
        # first, so its first page shows every category rather than 24 bags.
        for product in _in_turn(products):
            writer.writerow(
                [
                    product.sku,
                    product.title,
                    product.category,
                    product.colour,
                    product.price,
                    "true" if product.in_stock else "false",
                    f"{IMAGE_FOLDER}/{product.sku}.jpg",
                ]
            )

    outfits_csv = out_dir / "outfits.csv"
    with outfits_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTFITS_HEADER)
        for number, items in enumerate(outfits, start=1):
            for product in items:
                writer.writerow([f"OUT-{number:04d}", product.sku])

    return DemoCatalog(products_csv, outfits_csv, image_dir, len(products), len(outfits))


# --- products -------------------------------------------------------------------------------


def _in_turn(products: list[_Product]) -> list[_Product]:
    """The products with their categories interleaved: the first of each, the second of each..."""
    by_category: dict[str, list[_Product]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product)
    rounds = max(len(group) for group in by_category.values())
    return [group[i] for i in range(rounds) for group in by_category.values() if i < len(group)]


def _make_products(rng: random.Random, per_category: int) -> list[_Product]:
    style_names = list(STYLES)
    products = []
    for category in CATEGORIES:
        # Deal styles out evenly so even a small catalog has every style in every category.
        styles = [style_names[index % len(style_names)] for index in range(per_category)]
        rng.shuffle(styles)
        for number, style_name in enumerate(styles, start=1):
            style = STYLES[style_name]
            pattern_style = style
            if rng.random() < MIXED_STYLE_RATE:
                pattern_style = STYLES[rng.choice([s for s in style_names if s != style_name])]
            colour = rng.choice(list(style.colours))
            weights = [
                FAVOURED_NOUN_WEIGHT if noun in style.favoured_nouns else 1
                for noun in category.nouns
            ]
            low, high = category.price_range
            products.append(
                _Product(
                    sku=f"{category.sku_prefix}-{number:04d}",
                    category=category.name,
                    style=style.name,
                    colour=colour,
                    rgb=style.colours[colour],
                    pattern=rng.choice(pattern_style.patterns),
                    accent=_pick_accent(rng, style.colours[colour], pattern_style),
                    noun=rng.choices(category.nouns, weights=weights)[0],
                    price=f"{rng.randint(low, high)}.{rng.choice(['99', '95', '50', '00'])}",
                    in_stock=rng.random() < IN_STOCK_RATE,
                )
            )
    return products


def _luminance(rgb: RGB) -> float:
    red, green, blue = rgb
    return 0.299 * red + 0.587 * green + 0.114 * blue


def _pick_accent(rng: random.Random, main: RGB, style: Style) -> RGB:
    """A palette colour that stands out against the main one, so the pattern is visible."""
    contrasting = [
        rgb for rgb in style.colours.values() if abs(_luminance(rgb) - _luminance(main)) > 60
    ]
    if contrasting:
        return rng.choice(contrasting)
    return _shade(main, 0.55) if _luminance(main) > 110 else _lighten(main, 0.6)


def _choose_cold_start(rng: random.Random, products: list[_Product]) -> set[str]:
    """About a fifth of every category: new arrivals that no outfit contains yet. They are taken
    from the styles with the most products left, so outfits of every style still find items."""
    chosen: set[str] = set()
    for category in CATEGORY_NAMES:
        by_style: dict[str, list[str]] = {}
        for product in products:
            if product.category == category:
                by_style.setdefault(product.style, []).append(product.sku)
        in_category = sum(len(skus) for skus in by_style.values())
        for _ in range(math.ceil(in_category / 5)):
            largest = max(len(skus) for skus in by_style.values())
            candidates = [sku for skus in by_style.values() if len(skus) == largest for sku in skus]
            sku = rng.choice(candidates)
            next(skus for skus in by_style.values() if sku in skus).remove(sku)
            chosen.add(sku)
    return chosen


# --- outfits --------------------------------------------------------------------------------


def _make_outfits(
    rng: random.Random, products: list[_Product], cold_start: set[str], outfit_count: int
) -> list[list[_Product]]:
    eligible = [product for product in products if product.sku not in cold_start]
    # A heavy-tailed weight per product: a few bestsellers appear in many outfits.
    popularity = {product.sku: rng.paretovariate(1.2) for product in eligible}
    by_category: dict[str, list[_Product]] = {name: [] for name in CATEGORY_NAMES}
    by_category_style: dict[tuple[str, str], list[_Product]] = {}
    for product in eligible:
        by_category[product.category].append(product)
        by_category_style.setdefault((product.category, product.style), []).append(product)

    def pick(category: str, style: str) -> _Product:
        same_style = by_category_style.get((category, style), [])
        off_style = rng.random() < OFF_STYLE_RATE
        pool = same_style if same_style and not off_style else by_category[category]
        return rng.choices(pool, weights=[popularity[product.sku] for product in pool])[0]

    style_names = list(STYLES)
    outfits = []
    for _ in range(outfit_count):
        style = rng.choice(style_names)
        categories = ["Dresses"] if rng.random() < 0.35 else ["Tops", "Bottoms"]
        categories.append("Shoes")
        if rng.random() < 0.8:
            categories.append("Bags")
        if rng.random() < 0.4:
            categories.append("Outerwear")
        if rng.random() < 0.45:
            categories.append("Jewellery")
        if len(categories) < 3:  # a dress and shoes alone is too thin an outfit
            categories.append("Bags")
        categories.sort(key=CATEGORY_NAMES.index)
        outfits.append([pick(category, style) for category in categories])
    return outfits


# --- drawing --------------------------------------------------------------------------------


def _shade(rgb: RGB, factor: float) -> RGB:
    red, green, blue = (max(0, min(255, round(channel * factor))) for channel in rgb)
    return red, green, blue


def _lighten(rgb: RGB, amount: float) -> RGB:
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
    centre_colour = _shade(accent, 0.6) if _luminance(accent) > 110 else _lighten(accent, 0.6)
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
    light = _lighten(main, 0.75)
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
        colour = _lighten(main, amount)
        draw.line([(centre - size, size), (centre, 0)], fill=colour, width=width)


def _paint_sparkle(
    draw: ImageDraw.ImageDraw, size: int, main: RGB, accent: RGB, rng: random.Random
) -> None:
    glint = _lighten(accent, 0.5)
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


def _draw_product_image(product: _Product, size: int, seed: int) -> Image.Image:
    """The product's silhouette, filled with its colour and pattern, on a near-white ground."""
    # Seeded per product (a string seed is hashed stably), so jitter does not depend on order.
    rng = random.Random(f"{seed}:{product.sku}")
    main = _shade(product.rgb, rng.uniform(0.92, 1.06))
    ground = rng.randint(244, 252)
    background: RGB = (ground, ground, ground - rng.randint(0, 4))

    shift = (rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.03))
    canvas = _SilhouetteCanvas(size, scale=rng.uniform(0.84, 1.0), shift=shift)
    SILHOUETTES[product.noun](canvas)
    fill, details, trim_mask, trim_layer = canvas.downsampled()

    pattern_layer = Image.new("RGB", (size, size), main)
    paint = PATTERN_PAINTERS[product.pattern]
    paint(ImageDraw.Draw(pattern_layer), size, main, product.accent, rng)

    image = Image.new("RGB", (size, size), background)
    image.paste(pattern_layer, mask=fill)
    image.paste(trim_layer, mask=trim_mask)
    # A darker outline keeps white and cream items visible on the white ground.
    silhouette = ImageChops.lighter(fill, trim_mask)
    outline = ImageChops.subtract(silhouette.filter(ImageFilter.MaxFilter(3)), silhouette)
    edge_colour = _shade(main, 0.55) if _luminance(main) > 60 else _lighten(main, 0.35)
    image.paste(edge_colour, mask=outline)
    detail_colour = _shade(main, 0.6) if _luminance(main) > 80 else _lighten(main, 0.45)
    image.paste(detail_colour, mask=ImageChops.multiply(details, fill))
    return image


def _remove_stale_images(image_dir: Path, skus: set[str]) -> None:
    """Delete images an earlier, larger run drew, so the folder matches products.csv."""
    prefixes = "|".join(category.sku_prefix for category in CATEGORIES)
    own_image = re.compile(rf"^(?:{prefixes})-\d{{4,}}\.jpg$")
    for path in image_dir.iterdir():
        if own_image.match(path.name) and path.stem not in skus:
            path.unlink()
