import mmap

import faiss
import numpy as np
import pytest

import embeddings.engine.index as index_module
from embeddings.engine.index import (
    FLOAT32_SCAN_UP_TO,
    BestSoFar,
    CompatibilityIndex,
    above_floors,
    build_category_index,
    complementary_categories,
)
from embeddings.engine.space import PairWeights


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
    # Memory-mapped read-only: every web worker of a machine reads the same pages.
    for array in (loaded.vectors, loaded.neighbours):
        assert not array.flags.writeable and isinstance(array.base.base, mmap.mmap)


def test_a_large_category_scans_float16_and_still_serves_the_exact_nearest(tmp_path):
    rng = np.random.default_rng(7)
    count = FLOAT32_SCAN_UP_TO + 1000
    vectors = unit(rng.standard_normal((count + 1, 32)))
    skus = [f"item-{n}" for n in range(count)] + ["anchor"]
    categories = ["Bottoms"] * count + ["Tops"]
    index = CompatibilityIndex.build(skus, categories, vectors, [[0, count]])
    index.save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)  # memory-mapped
    assert "ScalarQuantizer" in type(faiss.downcast_index(loaded.indexes["Bottoms"].index)).__name__
    exact = vectors[:count] @ vectors[count]
    best = np.argsort(-exact)[:10]
    found = loaded.nearest_rows(count, "Bottoms", 10)
    assert [row for row, _ in found] == best.tolist()
    np.testing.assert_allclose([score for _, score in found], exact[best], rtol=1e-6)
    small = build_category_index(vectors[:10], np.arange(10))
    assert type(faiss.downcast_index(small.index)).__name__ == "IndexFlatIP"


def random_index(seed: int, items: int, depth: int) -> CompatibilityIndex:
    """Four categories of random items with pair weights and curated outfits (co-occurrence
    0.5), their lists computed to `depth` (0: every question searched)."""
    rng = np.random.default_rng(seed)
    names = ["Tops", "Bottoms", "Shoes", "Bags"]
    categories = [names[n % 4] for n in range(items)]
    vectors = unit(rng.standard_normal((items, 16)))
    outfits = [[int(rng.integers(items // 4)) * 4 + k for k in range(4)] for _ in range(80)]
    pairs = np.asarray([(a, b) for a in range(4) for b in range(a + 1, 4)])
    weights = PairWeights(names, pairs, rng.uniform(0.2, 1.8, (len(pairs), 16)).astype("f4"))
    skus = [f"s{n}" for n in range(items)]
    return CompatibilityIndex.build(skus, categories, vectors, outfits, 0.5, weights, depth)


def test_computed_neighbours_answer_as_the_live_search_does(tmp_path):
    live, computed = random_index(11, 240, 0), random_index(11, 240, 8)
    categories = live.categories
    computed.save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)
    assert live.neighbours is None and loaded.neighbours.shape == (240, 3, 8)
    curated = 0
    for row in range(240):
        for other in live.complements_of(categories[row]):
            expected = live.nearest_rows(row, other, 6)
            got = loaded.nearest_rows(row, other, 6)
            assert [r for r, _ in got] == [r for r, _ in expected]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)
            curated += any(r in live.scorer.partners.get(row, {}) for r, _ in got)
            # Deeper than computed: the index is searched.
            assert loaded.nearest_rows(row, other, 12) == live.nearest_rows(row, other, 12)
    assert curated > 100  # the curated bonus is part of what was computed


def test_many_rows_asked_together_get_what_each_gets_alone(tmp_path):
    """nearest_rows_each() reads the computed lists of all the rows asked in one gather: with
    the scores the saved index keeps, and scored by category where they are not kept."""
    built = random_index(12, 200, 8)
    random_index(12, 200, 8).save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)
    assert built.neighbour_scores is None and loaded.neighbour_scores is not None
    categories = built.categories
    asked = [(row, other) for row in range(200) for other in built.complements_of(categories[row])]
    asked += [(3, "Nowhere"), (5, "Tops"), (7, "Bottoms")]  # no such category; own; searched
    for index in (built, loaded):
        for count in (6, 8, 12):  # 12: deeper than computed, searched one by one
            together = index.nearest_rows_each(asked, count)
            for (row, other), found in zip(asked, together, strict=True):
                alone = built.nearest_rows(row, other, count)
                assert [r for r, _ in found] == [r for r, _ in alone], (row, other, count)
                np.testing.assert_allclose(
                    [s for _, s in found], [s for _, s in alone], rtol=1e-5, atol=1e-6
                )
    skus_asked = [(f"s{row}", other) for row, other in asked[:50]] + [("unknown", "Tops")]
    for one, alone in zip(loaded.candidates_each(skus_asked, 6), skus_asked, strict=True):
        expected = loaded.candidates(*alone, 6)
        assert [item[0] for item in one.items] == [item[0] for item in expected.items]
        assert [item[2] for item in one.items] == [item[2] for item in expected.items]


def test_a_category_from_graph_size_is_searched_through_hnsw(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "GRAPH_FROM", 300)
    assert index_module.index_kind(299) == "float32" and index_module.index_kind(300) == "hnsw"
    rng = np.random.default_rng(5)
    vectors = unit(rng.standard_normal((401, 16)))
    categories = ["Bottoms"] * 400 + ["Tops"]
    index = CompatibilityIndex.build(
        [f"s{n}" for n in range(401)], categories, vectors, [[0, 400]], neighbour_depth=0
    )
    index.save(tmp_path)
    loaded = CompatibilityIndex.load(tmp_path)
    graph = faiss.downcast_index(loaded.indexes["Bottoms"].index)
    assert type(graph).__name__ == "IndexHNSWFlat"
    assert graph.hnsw.efSearch == index_module.HNSW_SEARCH_DEPTH  # saved with the index
    exact = np.argsort(-(vectors[:400] @ vectors[400]))[:10].tolist()
    assert [row for row, _ in loaded.nearest_rows(400, "Bottoms", 10)] == exact
    with pytest.raises(ValueError, match="unknown index kind"):
        build_category_index(vectors, np.arange(401), "ivf")


def test_curated_pairs_lift_warm_matches_and_survive_saving(tmp_path):
    # top-b sits far from bottom-a, but stylists paired them three times
    outfits = [[1, 2], [1, 2], [1, 2]]
    plain = CompatibilityIndex.build(SKUS, CATEGORIES, VECTORS, outfits)
    blended = CompatibilityIndex.build(SKUS, CATEGORIES, VECTORS, outfits, cooccurrence_weight=1)
    assert [s for s, _ in plain.nearest("top-b", "Bottoms", 2)] == ["bottom-b", "bottom-a"]
    ranked = blended.nearest("top-b", "Bottoms", 2)
    assert [s for s, _ in ranked] == ["bottom-a", "bottom-b"]
    # cos(top-b, bottom-a) + 1 · log(1 + 3)
    assert ranked[0][1] == pytest.approx(float(VECTORS[1] @ VECTORS[2]) + np.log(4), rel=1e-5)
    blended.save(tmp_path)
    assert CompatibilityIndex.load(tmp_path).nearest("top-b", "Bottoms", 2) == ranked


def test_cooccurrence_bonus_is_silent_for_new_arrivals():
    from embeddings.engine.cooccurrence import CoOccurrence

    pairs = CoOccurrence.from_outfits([[0, 1], [0, 1], [0, 2]], weight=0.5)
    assert pairs.bonus([0], [1, 2, 3]).tolist() == pytest.approx(
        [0.5 * np.log(3), 0.5 * np.log(2), 0.0]
    )
    assert pairs.bonus([3], [0, 1]).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("block", [503, 50, 7], ids=["one block", "blocks", "small blocks"])
def test_best_so_far_keeps_what_a_full_sort_finds(block):
    """What a refresh ranks its newcomers' lists with, block by block (a partial sort of the
    first, the items above each query's floor from the others): the same best items, in
    order, as sorting every score at once."""
    rng = np.random.default_rng(11)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    items = rng.normal(size=(503, 16)).astype(np.float32)
    ids = rng.permutation(10_000)[:503]  # rows of a catalog, in no order
    best = BestSoFar(len(queries), 24)
    for start in range(0, len(items), block):
        best.add(queries @ items[start : start + block].T, ids[start : start + block])
    scores, found = best.ranked()
    every = queries @ items.T
    expected = np.argsort(-every, axis=1, kind="stable")[:, :24]
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(every, expected, 1), rtol=1e-5)


@pytest.mark.parametrize("floor_at", [40, 2], ids=["many above", "few above"])
def test_above_floors_keeps_each_rows_best_above_its_floor(floor_at):
    """What a refresh offers a list: its best scores above its floor, at most `keep`."""
    rng = np.random.default_rng(4)
    scored = rng.normal(size=(6, 50)).astype(np.float32)
    floor = np.sort(scored, axis=1)[:, -floor_at]  # 39 above it (more than keep), or 1
    above, at = above_floors(scored, floor, keep=5)
    assert above.shape[1] <= 5
    for row in range(len(scored)):
        expected = np.sort(scored[row][scored[row] > floor[row]])[::-1][:5]
        kept = above[row][above[row] > -np.inf]
        np.testing.assert_array_equal(np.sort(kept)[::-1], expected)
        np.testing.assert_array_equal(scored[row, at[row, : len(kept)]], above[row, : len(kept)])
