"""The drawn demo catalog: well-formed files, sensible outfits, new arrivals left out,
reproducible output and a style signal a model can learn."""

import csv
import itertools
import random
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from catalog.demo_catalog import CATEGORIES, STYLES, DemoCatalog, generate_demo_catalog

STYLE_OF_COLOUR = {colour: name for name, style in STYLES.items() for colour in style.colours}
NOUNS_OF_CATEGORY = {category.name: category.nouns for category in CATEGORIES}
PREFIX_OF_CATEGORY = {category.name: category.sku_prefix for category in CATEGORIES}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def outfits_of(demo: DemoCatalog) -> dict[str, list[str]]:
    outfits: dict[str, list[str]] = {}
    for row in read_rows(demo.outfits_csv):
        outfits.setdefault(row["outfit_id"], []).append(row["sku"])
    return outfits


@pytest.fixture(scope="module")
def default_catalog(tmp_path_factory) -> DemoCatalog:
    return generate_demo_catalog(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def smallest_catalog(tmp_path_factory) -> DemoCatalog:
    return generate_demo_catalog(
        tmp_path_factory.mktemp("smallest"),
        products_per_category=4,
        outfit_count=30,
        seed=5,
        image_size=64,
    )


@pytest.fixture(params=["default_catalog", "smallest_catalog"])
def catalog(request) -> DemoCatalog:
    return request.getfixturevalue(request.param)


def test_csv_headers_and_row_counts_match(catalog: DemoCatalog):
    assert read_header(catalog.products_csv) == [
        "sku",
        "title",
        "category",
        "colour",
        "price",
        "in_stock",
        "image",
    ]
    assert read_header(catalog.outfits_csv) == ["outfit_id", "sku"]
    products = read_rows(catalog.products_csv)
    assert len(products) == catalog.product_count == len({row["sku"] for row in products})
    assert len(outfits_of(catalog)) == catalog.outfit_count
    per_category = Counter(row["category"] for row in products)
    assert set(per_category) == set(NOUNS_OF_CATEGORY)
    assert len(set(per_category.values())) == 1


def test_default_catalog_has_the_documented_size(default_catalog: DemoCatalog):
    assert default_catalog.product_count == 40 * 7
    assert default_catalog.outfit_count == 240
    assert sorted(outfits_of(default_catalog))[0] == "OUT-0001"


def test_every_image_is_a_relative_square_rgb_jpeg_with_something_drawn(catalog: DemoCatalog):
    size = 128 if catalog.product_count == 280 else 64
    products = read_rows(catalog.products_csv)
    assert sorted(path.name for path in catalog.image_dir.iterdir()) == sorted(
        f"{row['sku']}.jpg" for row in products
    )
    for row in products:
        assert row["image"] == f"images/{row['sku']}.jpg"
        with Image.open(catalog.products_csv.parent / row["image"]) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB" and image.size == (size, size)
            assert image.convert("L").getextrema()[0] < 200  # a garment, not a blank page


def test_product_rows_are_well_formed(catalog: DemoCatalog):
    products = read_rows(catalog.products_csv)
    for row in products:
        assert re.fullmatch(rf"{PREFIX_OF_CATEGORY[row['category']]}-\d{{4}}", row["sku"])
        assert row["colour"] in STYLE_OF_COLOUR
        assert row["title"].startswith(row["colour"] + " ")
        assert row["title"].endswith(NOUNS_OF_CATEGORY[row["category"]]), row["title"]
        assert re.fullmatch(r"\d+\.\d{2}", row["price"]) and float(row["price"]) > 0
        assert row["in_stock"] in {"true", "false"}
    in_stock = sum(row["in_stock"] == "true" for row in products) / len(products)
    assert 0.7 < in_stock < 1


def test_outfits_use_known_products_of_distinct_categories(catalog: DemoCatalog):
    category_of = {row["sku"]: row["category"] for row in read_rows(catalog.products_csv)}
    for outfit_id, items in outfits_of(catalog).items():
        assert re.fullmatch(r"OUT-\d{4}", outfit_id)
        assert all(sku in category_of for sku in items)
        categories = [category_of[sku] for sku in items]
        assert 3 <= len(items) <= 6
        assert len(set(items)) == len(items) and len(set(categories)) == len(categories)
        assert "Shoes" in categories
        assert ("Dresses" in categories) != ({"Tops", "Bottoms"} <= set(categories))


def test_new_arrivals_are_in_no_outfit(catalog: DemoCatalog):
    skus = {row["sku"] for row in read_rows(catalog.products_csv)}
    in_outfits = {sku for items in outfits_of(catalog).values() for sku in items}
    assert len(skus - in_outfits) >= 0.15 * len(skus)


def test_popularity_is_skewed(default_catalog: DemoCatalog):
    uses = Counter(sku for items in outfits_of(default_catalog).values() for sku in items)
    assert max(uses.values()) >= 3 * statistics.median(uses.values())


def test_outfit_items_share_a_style_random_pairs_do_not(default_catalog: DemoCatalog):
    colour_of = {row["sku"]: row["colour"] for row in read_rows(default_catalog.products_csv)}

    def same_style(first: str, second: str) -> bool:
        return STYLE_OF_COLOUR[colour_of[first]] == STYLE_OF_COLOUR[colour_of[second]]

    pairs = [
        pair
        for items in outfits_of(default_catalog).values()
        for pair in itertools.combinations(items, 2)
    ]
    rng = random.Random(0)
    random_pairs = [rng.sample(sorted(colour_of), 2) for _ in range(len(pairs))]
    in_outfits = sum(same_style(*pair) for pair in pairs) / len(pairs)
    at_random = sum(same_style(*pair) for pair in random_pairs) / len(random_pairs)
    assert in_outfits > 0.7
    assert at_random < 0.35
    assert in_outfits > 2.5 * at_random


def test_same_seed_gives_the_same_files_another_seed_other_files(tmp_path: Path):
    arguments = {"products_per_category": 5, "outfit_count": 12}
    first = generate_demo_catalog(tmp_path / "a", seed=1, **arguments)
    again = generate_demo_catalog(tmp_path / "b", seed=1, **arguments)
    other = generate_demo_catalog(tmp_path / "c", seed=2, **arguments)
    assert first.products_csv.read_bytes() == again.products_csv.read_bytes()
    assert first.outfits_csv.read_bytes() == again.outfits_csv.read_bytes()
    for image in first.image_dir.iterdir():
        assert image.read_bytes() == (again.image_dir / image.name).read_bytes()
    assert first.products_csv.read_bytes() != other.products_csv.read_bytes()
    assert first.outfits_csv.read_bytes() != other.outfits_csv.read_bytes()


def test_rerunning_overwrites_and_drops_images_of_a_larger_run(tmp_path: Path):
    generate_demo_catalog(tmp_path, products_per_category=6, outfit_count=10, seed=4)
    smaller = generate_demo_catalog(tmp_path, products_per_category=4, outfit_count=8, seed=4)
    fresh = generate_demo_catalog(
        tmp_path / "fresh", products_per_category=4, outfit_count=8, seed=4
    )
    assert smaller.products_csv.read_bytes() == fresh.products_csv.read_bytes()
    assert smaller.outfits_csv.read_bytes() == fresh.outfits_csv.read_bytes()
    assert len(list(smaller.image_dir.iterdir())) == smaller.product_count == 28


def test_progress_reports_every_drawn_image(tmp_path: Path):
    reports: list[tuple[int, int]] = []
    demo = generate_demo_catalog(
        tmp_path,
        products_per_category=4,
        outfit_count=3,
        progress=lambda done, total: reports.append((done, total)),
    )
    assert reports == [(done, demo.product_count) for done in range(1, demo.product_count + 1)]


def test_too_small_catalogs_are_refused_clearly(tmp_path: Path):
    with pytest.raises(ValueError, match="products_per_category must be at least 4"):
        generate_demo_catalog(tmp_path, products_per_category=3)
    with pytest.raises(ValueError, match="outfit_count must be at least 1"):
        generate_demo_catalog(tmp_path, outfit_count=0)
    assert not (tmp_path / "products.csv").exists()
