"""Draws the demo catalog: a few hundred product images with titles, colours and prices, and
stylist-like outfits, made by the project itself (no download). Each product belongs to a style
(a palette and patterns) that is visible in its image and title, and outfits combine items of
one style, so compatibility is learnable from content, including for products in no outfit."""

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Style:
    colours: dict[str, RGB]
    patterns: tuple[str, ...]


STYLES: dict[str, Style] = {
    "classic": Style({"Navy": (24, 36, 70), "White": (246, 246, 242), "Beige": (214, 196, 160),
                      "Black": (28, 28, 30)}, ("plain", "pinstripe")),
    "sporty": Style({"Red": (205, 32, 48), "Grey": (140, 142, 148), "Royal blue": (40, 84, 205),
                     "Lime": (150, 205, 40)}, ("striped", "plain")),
    "boho": Style({"Olive": (110, 122, 52), "Mustard": (216, 166, 42), "Rust": (172, 78, 40),
                   "Cream": (240, 228, 200)}, ("dotted", "floral")),
    "pastel": Style({"Pink": (246, 182, 202), "Lilac": (200, 172, 232), "Mint": (172, 230, 202),
                     "Sky": (160, 206, 242)}, ("gingham", "plain")),
    "evening": Style({"Gold": (212, 176, 60), "Burgundy": (122, 22, 44), "Silver": (194, 196, 204),
                      "Emerald": (20, 112, 72)}, ("sparkle", "plain")),
}

CATEGORIES: dict[str, tuple[str, tuple[str, ...], tuple[float, float]]] = {
    # name: (SKU prefix, nouns, price range)
    "Tops": ("TOP", ("T-shirt", "blouse", "shirt", "sweater"), (12.99, 59.99)),
    "Bottoms": ("BOT", ("trousers", "jeans", "skirt", "shorts"), (19.99, 79.99)),
    "Dresses": ("DRE", ("midi dress", "maxi dress", "shirt dress"), (29.99, 129.99)),
    "Outerwear": ("OUT", ("blazer", "trench coat", "parka"), (59.99, 199.99)),
    "Shoes": ("SHO", ("sneakers", "boots", "heels", "loafers"), (29.99, 149.99)),
    "Bags": ("BAG", ("tote", "clutch", "backpack", "crossbody bag"), (19.99, 119.99)),
    "Jewellery": ("JEW", ("necklace", "earrings", "bracelet"), (9.99, 59.99)),
}

# Silhouettes in unit coordinates (x right, y down), one per noun where shapes differ.
SILHOUETTES: dict[str, list[Point]] = {
    "top": [(.30, .15), (.42, .12), (.50, .18), (.58, .12), (.70, .15), (.90, .35), (.78, .45),
            (.72, .38), (.72, .88), (.28, .88), (.28, .38), (.22, .45), (.10, .35)],
    "sweater": [(.30, .14), (.50, .20), (.70, .14), (.88, .30), (.92, .84), (.80, .86), (.74, .42),
                (.74, .88), (.26, .88), (.26, .42), (.20, .86), (.08, .84), (.12, .30)],
    "trousers": [(.30, .08), (.70, .08), (.76, .92), (.57, .92), (.50, .36), (.43, .92),
                 (.24, .92)],
    "shorts": [(.28, .25), (.72, .25), (.78, .68), (.54, .70), (.50, .50), (.46, .70), (.22, .68)],
    "skirt": [(.36, .15), (.64, .15), (.82, .82), (.18, .82)],
    "dress": [(.40, .08), (.60, .08), (.62, .30), (.58, .42), (.80, .92), (.20, .92), (.42, .42),
              (.38, .30)],
    "coat": [(.30, .10), (.50, .22), (.70, .10), (.88, .30), (.90, .82), (.78, .82), (.76, .45),
             (.76, .94), (.24, .94), (.24, .45), (.22, .82), (.10, .82), (.12, .30)],
    "shoe": [(.08, .56), (.14, .40), (.34, .42), (.55, .56), (.88, .62), (.92, .74), (.08, .74)],
    "boot": [(.20, .15), (.45, .15), (.47, .56), (.86, .64), (.90, .80), (.16, .80)],
    "heel": [(.10, .40), (.20, .36), (.55, .62), (.90, .66), (.90, .74), (.30, .74), (.18, .52),
             (.16, .80), (.12, .80)],
    "bag": [(.18, .40), (.82, .40), (.86, .86), (.14, .86)],
    "clutch": [(.12, .38), (.88, .38), (.88, .70), (.12, .70)],
}
NOUN_SHAPES = {
    "sweater": "sweater", "trousers": "trousers", "jeans": "trousers", "skirt": "skirt",
    "shorts": "shorts", "blazer": "coat", "trench coat": "coat", "parka": "coat",
    "sneakers": "shoe", "loafers": "shoe", "boots": "boot", "heels": "heel", "clutch": "clutch",
    "tote": "bag", "backpack": "bag", "crossbody bag": "bag",
}
CATEGORY_SHAPES = {"Tops": "top", "Dresses": "dress", "Bags": "bag"}


@dataclass(frozen=True)
class DemoCatalog:
    products_csv: Path
    outfits_csv: Path
    image_dir: Path
    product_count: int
    outfit_count: int


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    title: str
    category: str
    colour: str
    rgb: RGB
    pattern: str
    style: str
    noun: str
    price: str
    in_stock: bool


def _pattern_ink(rgb: RGB) -> RGB:
    """A shade that shows on `rgb`: darker on light colours, lighter on dark ones."""
    if sum(rgb) / 3 > 140:
        return tuple(int(c * 0.55) for c in rgb)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * 0.55) for c in rgb)  # type: ignore[return-value]


def _draw_pattern(size: int, product: DemoProduct, rng: random.Random) -> Image.Image:
    layer = Image.new("RGB", (size, size), product.rgb)
    draw = ImageDraw.Draw(layer)
    ink = _pattern_ink(product.rgb)
    step = max(4, size // 12)
    offset = rng.randrange(step)
    if product.pattern == "striped":
        for y in range(offset, size, step):
            draw.rectangle([0, y, size, y + step // 2 - 1], fill=ink)
    elif product.pattern == "pinstripe":
        for x in range(offset, size, step // 2 + 2):
            draw.line([(x, 0), (x, size)], fill=ink, width=1)
    elif product.pattern == "dotted":
        for y in range(offset, size, step):
            for x in range((y // step % 2) * step // 2, size, step):
                draw.ellipse([x, y, x + step // 3, y + step // 3], fill=ink)
    elif product.pattern == "gingham":
        for k in range(offset, size, step):
            draw.rectangle([k, 0, k + step // 2 - 1, size], fill=ink)
            draw.rectangle([0, k, size, k + step // 2 - 1], fill=ink)
    elif product.pattern == "floral":
        for _ in range(size * size // (step * step)):
            x, y, r = rng.randrange(size), rng.randrange(size), step // 4 + 1
            for dx, dy in ((-r, 0), (r, 0), (0, -r), (0, r)):
                draw.ellipse([x + dx - r, y + dy - r, x + dx + r, y + dy + r], fill=ink)
            draw.ellipse([x - r // 2, y - r // 2, x + r // 2, y + r // 2], fill=(250, 240, 200))
    elif product.pattern == "sparkle":
        for _ in range(size * size // 40):
            x, y = rng.randrange(size), rng.randrange(size)
            draw.point([(x, y), (x + 1, y), (x, y + 1)], fill=(255, 255, 240))
    return layer


def _silhouette_mask(size: int, product: DemoProduct, rng: random.Random) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    scale = size * rng.uniform(0.86, 1.0)
    shift_x = rng.uniform(0, size - scale)
    shift_y = rng.uniform(0, size - scale)

    def place(points: list[Point]) -> list[tuple[float, float]]:
        return [(shift_x + x * scale, shift_y + y * scale) for x, y in points]

    if product.category == "Jewellery":
        ring = place([(.22, .12), (.78, .70)])
        draw.ellipse(ring, outline=255, width=max(3, size // 18))
        draw.ellipse(place([(.42, .62), (.58, .84)]), fill=255)
        return mask
    shape = NOUN_SHAPES.get(product.noun) or CATEGORY_SHAPES[product.category]
    draw.polygon(place(SILHOUETTES[shape]), fill=255)
    if shape in {"bag", "clutch"} and product.noun != "clutch":
        draw.arc(place([(.32, .18), (.68, .62)]), 180, 360, fill=255, width=max(3, size // 24))
    return mask


def draw_product(product: DemoProduct, size: int, rng: random.Random) -> Image.Image:
    background = 255 - rng.randrange(8)
    image = Image.new("RGB", (size, size), (background, background, background))
    mask = _silhouette_mask(size, product, rng)
    image.paste(_draw_pattern(size, product, rng), (0, 0), mask)
    # An outline keeps white and cream items visible on the white background.
    image.paste((96, 96, 100), (0, 0), mask.filter(ImageFilter.FIND_EDGES))
    outline = ImageDraw.Draw(image)
    edges = mask.point(lambda v: 255 if v else 0).getbbox()
    if edges and product.category in {"Outerwear"}:  # lapels make a coat read as a coat
        middle = (edges[0] + edges[2]) / 2
        outline.line([(middle, edges[1] + size * .1), (middle, edges[3])],
                     fill=_pattern_ink(product.rgb), width=2)
    return image


def _make_products(products_per_category: int, rng: random.Random) -> list[DemoProduct]:
    products = []
    style_names = list(STYLES)
    for category, (prefix, nouns, (low, high)) in CATEGORIES.items():
        for number in range(1, products_per_category + 1):
            style_name = style_names[(number + rng.randrange(len(style_names))) % len(style_names)]
            style = STYLES[style_name]
            colour = rng.choice(sorted(style.colours))
            # A few products mix styles, so colour alone is not the whole story.
            pattern_style = rng.choice(style_names) if rng.random() < 0.1 else style_name
            pattern = rng.choice(STYLES[pattern_style].patterns)
            noun = rng.choice(nouns)
            words = [colour] + ([] if pattern == "plain" else [pattern]) + [noun]
            title = " ".join(words)
            price = f"{rng.uniform(low, high):.2f}"
            products.append(DemoProduct(
                sku=f"{prefix}-{number:04d}", title=title[0].upper() + title[1:],
                category=category, colour=colour, rgb=style.colours[colour], pattern=pattern,
                style=style_name, noun=noun, price=price, in_stock=rng.random() < 0.9,
            ))
    return products


def _make_outfits(products: list[DemoProduct], outfit_count: int, rng: random.Random):
    """Outfits of one style each; ~20% of products (new arrivals) are in none, and a few
    favourites recur in many, as in a real store."""
    by_category: dict[str, list[DemoProduct]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product)
    warm: dict[str, list[DemoProduct]] = {}
    popularity: dict[str, float] = {}
    for category, items in by_category.items():
        shuffled = rng.sample(items, len(items))
        keep = shuffled[: len(items) - max(1, round(len(items) * 0.2))]
        warm[category] = keep
        for rank, product in enumerate(keep):
            popularity[product.sku] = 1 / (rank + 1) ** 0.7

    def pick(category: str, style: str) -> DemoProduct | None:
        same_style = [p for p in warm[category] if p.style == style]
        pool = warm[category] if rng.random() < 0.05 or not same_style else same_style
        return rng.choices(pool, weights=[popularity[p.sku] for p in pool])[0] if pool else None

    outfits = []
    style_names = list(STYLES)
    for _ in range(outfit_count):
        style = rng.choice(style_names)
        categories = ["Dresses"] if rng.random() < 0.35 else ["Tops", "Bottoms"]
        categories.append("Shoes")
        for optional, chance in (("Bags", 0.8), ("Outerwear", 0.4), ("Jewellery", 0.4)):
            if rng.random() < chance:
                categories.append(optional)
        if len(categories) < 3:
            categories.append("Bags")
        items = [item for item in (pick(c, style) for c in categories) if item is not None]
        outfits.append(items)
    return outfits


def generate_demo_catalog(
    out_dir: Path,
    products_per_category: int = 40,
    outfit_count: int = 240,
    seed: int = 7,
    image_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> DemoCatalog:
    """Write products.csv, outfits.csv and images/ under `out_dir` (overwriting), deterministic
    for a given seed."""
    if products_per_category < 4:
        raise ValueError(f"products_per_category must be at least 4, not {products_per_category}")
    if outfit_count < 1:
        raise ValueError(f"outfit_count must be at least 1, not {outfit_count}")
    rng = random.Random(seed)
    products = _make_products(products_per_category, rng)
    outfits = _make_outfits(products, outfit_count, rng)

    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for done, product in enumerate(products, start=1):
        image = draw_product(product, image_size, random.Random(f"{seed}:{product.sku}"))
        image.save(image_dir / f"{product.sku}.jpg", quality=90)
        if progress:
            progress(done, len(products))

    products_csv = out_dir / "products.csv"
    with products_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "category", "colour", "price", "in_stock", "image"])
        for p in products:
            writer.writerow([p.sku, p.title, p.category, p.colour, p.price,
                             "true" if p.in_stock else "false", f"images/{p.sku}.jpg"])
    outfits_csv = out_dir / "outfits.csv"
    with outfits_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["outfit_id", "sku"])
        for number, items in enumerate(outfits, start=1):
            for item in items:
                writer.writerow([f"OUT-{number:04d}", item.sku])
    return DemoCatalog(products_csv, outfits_csv, image_dir, len(products), len(outfits))
