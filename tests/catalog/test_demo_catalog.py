import csv
import itertools
import random

import pytest
from PIL import Image

from catalog.demo_catalog import STYLES, generate_demo_catalog

STYLE_OF_COLOUR = {colour: name for name, style in STYLES.items() for colour in style.colours}


def read(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return generate_demo_catalog(tmp_path_factory.mktemp("demo"), products_per_category=12,
                                 outfit_count=80, seed=11)


def test_files_match_the_counts_and_every_image_is_a_square_rgb_picture(catalog):
    products = read(catalog.products_csv)
    assert len(products) == catalog.product_count == 12 * 7
    assert list(products[0]) == ["sku", "title", "category", "colour", "price", "in_stock",
                                 "image"]
    assert len({p["sku"] for p in products}) == len(products)
    for product in products:
        with Image.open(catalog.products_csv.parent / product["image"]) as image:
            assert image.mode == "RGB" and image.size == (128, 128)
            assert image.convert("L").getextrema()[0] < 200  # something is drawn on it


def test_outfits_use_known_products_of_distinct_categories_and_leave_new_arrivals_out(catalog):
    products = {p["sku"]: p for p in read(catalog.products_csv)}
    outfits: dict[str, list[str]] = {}
    for row in read(catalog.outfits_csv):
        outfits.setdefault(row["outfit_id"], []).append(row["sku"])
    assert len(outfits) == catalog.outfit_count == 80
    for items in outfits.values():
        categories = [products[sku]["category"] for sku in items]
        assert 3 <= len(items) <= 6 and len(set(categories)) == len(categories)
    in_outfits = {sku for items in outfits.values() for sku in items}
    assert len(set(products) - in_outfits) >= 0.15 * len(products)


def test_outfits_carry_a_style_signal_random_pairs_do_not(catalog):
    products = {p["sku"]: p for p in read(catalog.products_csv)}
    outfits: dict[str, list[str]] = {}
    for row in read(catalog.outfits_csv):
        outfits.setdefault(row["outfit_id"], []).append(row["sku"])

    def same_style(a: str, b: str) -> bool:
        return STYLE_OF_COLOUR[products[a]["colour"]] == STYLE_OF_COLOUR[products[b]["colour"]]

    pairs = [pair for items in outfits.values() for pair in itertools.combinations(items, 2)]
    rng = random.Random(0)
    random_pairs = [tuple(rng.sample(sorted(products), 2)) for _ in range(len(pairs))]
    in_outfits = sum(same_style(*p) for p in pairs) / len(pairs)
    at_random = sum(same_style(*p) for p in random_pairs) / len(random_pairs)
    assert in_outfits > 0.8 and at_random < 0.35


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = generate_demo_catalog(tmp_path / "a", products_per_category=4, outfit_count=5, seed=1)
    again = generate_demo_catalog(tmp_path / "b", products_per_category=4, outfit_count=5, seed=1)
    other = generate_demo_catalog(tmp_path / "c", products_per_category=4, outfit_count=5, seed=2)
    assert first.products_csv.read_bytes() == again.products_csv.read_bytes()
    assert first.outfits_csv.read_bytes() == again.outfits_csv.read_bytes()
    image = "images/TOP-0001.jpg"
    assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()
    assert first.products_csv.read_bytes() != other.products_csv.read_bytes()


def test_too_small_catalogs_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="products_per_category must be at least 4"):
        generate_demo_catalog(tmp_path, products_per_category=2)
    with pytest.raises(ValueError, match="outfit_count must be at least 1"):
        generate_demo_catalog(tmp_path, outfit_count=0)
