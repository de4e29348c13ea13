import numpy as np

from embeddings.index import CompatibilityIndex, complementary_categories


def unit(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


SKUS = ["top-a", "top-b", "bottom-a", "bottom-b", "shoe-a", "dress-a"]
CATEGORIES = ["Tops", "Tops", "Bottoms", "Bottoms", "Shoes", "Dresses"]
VECTORS = unit([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0.1, 0.9, 0], [0.7, 0.7, 0.1], [0, 0, 1]])
OUTFITS = [[0, 2, 4], [1, 3], [5, 4]]


def test_complements_come_from_outfits_most_frequent_first():
    complements = complementary_categories(OUTFITS, CATEGORIES)
    assert complements["Tops"] == ["Bottoms", "Shoes"]
    assert set(complements["Shoes"]) == {"Tops", "Bottoms", "Dresses"}
    assert "Bottoms" not in complements["Dresses"]  # never combined by stylists


def test_nearest_searches_one_category_best_first_and_never_returns_the_query():
    index = CompatibilityIndex.build(SKUS, CATEGORIES, VECTORS, OUTFITS)
    bottoms = index.nearest("top-a", "Bottoms", 2)
    assert [sku for sku, _ in bottoms] == ["bottom-a", "bottom-b"]
    assert bottoms[0][1] > bottoms[1][1]
    assert [sku for sku, _ in index.nearest("top-a", "Tops", 5)] == ["top-b"]
    assert index.nearest("unknown", "Tops", 3) == []
    assert index.nearest("top-a", "Hats", 3) == []


def test_a_category_in_no_outfit_complements_every_other():
    index = CompatibilityIndex.build(SKUS, CATEGORIES, VECTORS, [[0, 2]])
    assert index.complements_of("Shoes") == ["Bottoms", "Dresses", "Tops"]


def test_saved_index_loads_with_the_same_answers(tmp_path):
    index = CompatibilityIndex.build(SKUS, CATEGORIES, VECTORS, OUTFITS)
    index.save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)
    for sku in SKUS:
        for category in set(CATEGORIES):
            assert loaded.nearest(sku, category, 3) == index.nearest(sku, category, 3)
    assert loaded.complements == index.complements
