"""A small synthetic fashion catalog for the demo and the tests: products drawn with Pillow
(no downloads; catalog/demo_drawing.py draws them) and stylist-like outfits whose items share
a style visible in colour, pattern and title, so a tiny CLIP-style model trained on it can
learn which items go together."""

import csv
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .demo_drawing import RGB, draw_product_image, lighten, luminance, shade

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
        image = draw_product_image(
            product.sku,
            product.noun,
            product.pattern,
            product.rgb,
            product.accent,
            image_size,
            seed,
        )
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


def _pick_accent(rng: random.Random, main: RGB, style: Style) -> RGB:
    """A palette colour that stands out against the main one, so the pattern is visible."""
    contrasting = [
        rgb for rgb in style.colours.values() if abs(luminance(rgb) - luminance(main)) > 60
    ]
    if contrasting:
        return rng.choice(contrasting)
    return shade(main, 0.55) if luminance(main) > 110 else lighten(main, 0.6)


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


def _remove_stale_images(image_dir: Path, skus: set[str]) -> None:
    """Delete images an earlier, larger run drew, so the folder matches products.csv."""
    prefixes = "|".join(category.sku_prefix for category in CATEGORIES)
    own_image = re.compile(rf"^(?:{prefixes})-\d{{4,}}\.jpg$")
    for path in image_dir.iterdir():
        if own_image.match(path.name) and path.stem not in skus:
            path.unlink()
