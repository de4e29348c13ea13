"""A refreshed index answers exactly as the same version built whole on the changed catalog:
same rows, vectors, indexes, computed neighbours (both directions) and matches."""

import dataclasses
import json
import os

import numpy as np
import pytest

from embeddings.engine import index as index_module
from embeddings.engine import layered
from embeddings.engine.cooccurrence import CoOccurrence
from embeddings.engine.index import (
    NEIGHBOUR_SCORES_FILE,
    NEIGHBOURS_FILE,
    VECTORS_FILE,
    CompatibilityIndex,
    GrownIndex,
    build_category_index,
    index_kind,
    rows_by_category,
)
from embeddings.engine.layered import ROWS_SUFFIX
from embeddings.engine.refresh import Upsert, refreshed
from embeddings.engine.scorers import TypeAwareScorer
from embeddings.engine.space import PairWeights

DIMENSIONS = 16
DEPTH = 8
# Sizes: one category smaller than the depth, one that only ever appears in a refresh.
SIZES = {"Tops": 60, "Trousers": 50, "Shoes": 40, "Bags": 30, "Belts": 5}


def unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=[0.0, 0.5], ids=["no hub penalty", "hub penalty"])
def version(request):
    """A version's index of random items, outfits (curated co-occurrence), pair weights and,
    with the hub penalty, each category's centre: a pair's score is then not symmetric."""
    rng = np.random.default_rng(3)
    categories = [name for name, size in SIZES.items() for _ in range(size)]
    skus = [f"{category[:3].upper()}{n}" for n, category in enumerate(categories)]
    rows = rows_by_category(categories)
    outfits = [
        [int(rng.choice(rows[c])) for c in ("Tops", "Trousers", "Shoes", "Bags", "Belts")[:k]]
        for k in rng.integers(2, 6, size=40)
    ]
    names = list(SIZES)
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))][:6]
    weights = rng.uniform(0.2, 1.8, size=(len(pairs), DIMENSIONS)).astype(np.float32)
    index = CompatibilityIndex.build(
        skus,
        categories,
        unit(rng, len(skus)),
        outfits,
        cooccurrence_weight=0.4,
        pair_weights=PairWeights(names, np.array(pairs), weights),
        neighbour_depth=DEPTH,
        hub_penalty=request.param,
    )
    outfit_skus = [[skus[row] for row in outfit] for outfit in outfits]
    return index, outfit_skus, rng


def built_whole(before: CompatibilityIndex, skus, categories, vectors, outfit_skus, like=None):
    """The same version built on the changed catalog from scratch: its complements, pair
    weights (`like`'s, if given) and curated outfits (without the removed items), every index
    and list anew."""
    like = like or before
    row_of = {sku: row for row, sku in enumerate(skus)}
    outfits = [[row_of[s] for s in outfit if s in row_of] for outfit in outfit_skus]
    whole = CompatibilityIndex(
        list(skus),
        list(categories),
        vectors,
        {c: build_category_index(vectors[r], r) for c, r in rows_by_category(categories).items()},
        like.complements,
        TypeAwareScorer(
            like.scorer.pair_weights,
            CoOccurrence.from_outfits(outfits, before.scorer.cooccurrence.weight),
            like.scorer.centres,
        ),
    )
    whole.neighbours = whole.computed_neighbours(DEPTH)
    return whole


def test_a_refresh_answers_as_the_version_built_whole_on_the_changed_catalog(version):
    before, outfit_skus, rng = version
    in_outfits = {sku for outfit in outfit_skus for sku in outfit}
    removals = ["TOP0", "TRO61", "BEL235", *sorted(in_outfits)[:3]]  # BEL: under the depth
    changed = ["TOP5", "SHO120", sorted(in_outfits)[10]]  # new images
    moved = ["BAG150"]  # recategorised
    added = {
        f"NEW{n}": Upsert(c, v)
        for n, (c, v) in enumerate(
            zip(
                ["Tops", "Shoes", "Belts", "Bags", "Hats", "Hats", "Trousers"] * 3,
                unit(rng, 21),
                strict=False,
            )
        )
    }
    upserts = {
        sku: Upsert(before.categories[before.row_of_sku[sku]], v)
        for sku, v in zip(changed, unit(rng, len(changed)), strict=True)
    }
    upserts |= {sku: Upsert("Belts", before.vectors[before.row_of_sku[sku]]) for sku in moved}
    upserts |= added

    after = refreshed(before, upserts, removals)

    gone = set(removals) - set(upserts)  # a SKU both removed and upserted is upserted
    kept = [sku for sku in before.skus if sku not in gone]
    assert after.skus == kept + list(added)
    categories = [
        upserts[sku].category if sku in upserts else before.categories[before.row_of_sku[sku]]
        for sku in after.skus
    ]
    vectors = np.stack(
        [
            upserts[sku].vector if sku in upserts else before.vectors[before.row_of_sku[sku]]
            for sku in after.skus
        ]
    ).astype(np.float32)
    whole = built_whole(before, after.skus, categories, vectors, outfit_skus)
    assert after.categories == whole.categories
    np.testing.assert_array_equal(after.vectors, whole.vectors)
    assert after.scorer.partners == whole.scorer.partners
    np.testing.assert_array_equal(after.neighbours, whole.neighbours)
    np.testing.assert_allclose(after.neighbour_scores, whole.listed_scores(), rtol=1e-5, atol=1e-6)
    for sku in after.skus:
        for other in after.complements_of(after.categories[after.row_of_sku[sku]]):
            for count in (4, DEPTH, DEPTH + 5):  # computed, and searched in the indexes
                got, expected = after.nearest(sku, other, count), whole.nearest(sku, other, count)
                assert [s for s, _ in got] == [s for s, _ in expected], (sku, other, count)
                np.testing.assert_allclose([x for _, x in got], [x for _, x in expected], 1e-5)

    # Both directions: a newcomer has lists of its own and is in existing products' lists.
    newcomer = after.row_of_sku["NEW1"]  # Shoes
    assert (after.neighbours[newcomer] >= 0).any()
    assert (after.neighbours == newcomer).any()
    # Removed and changed-away products are in no list of their old category.
    for sku in gone:
        assert sku not in after.row_of_sku
    belts = after.rows_of_category["Belts"]
    assert after.row_of_sku["BAG150"] in belts.tolist()


@pytest.mark.parametrize("scores_kept", [True, False], ids=["scores kept", "older version"])
def test_new_arrivals_alone_are_merged_into_lists_and_added_to_copies_of_the_indexes(
    version, tmp_path, scores_kept
):
    """The usual refresh: only new products, many of one category (they crowd existing lists,
    curated ones included), none renumbering anything; the version as web processes load it
    (memory-mapped, read-only), with its lists' scores, or saved before they were kept."""
    built, outfit_skus, rng = version
    built.save(tmp_path)
    if not scores_kept:
        (tmp_path / NEIGHBOUR_SCORES_FILE).unlink()
    before = CompatibilityIndex.load(tmp_path)
    assert (before.neighbour_scores is not None) == scores_kept
    categories = ["Shoes"] * 12 + ["Tops", "Belts", "Belts", "Belts", "Bags"]
    added = {
        f"NEW{n}": Upsert(c, v)
        for n, (c, v) in enumerate(zip(categories, unit(rng, len(categories)), strict=True))
    }
    after = refreshed(before, added, [])

    assert after.skus == before.skus + list(added)
    expected_rows = rows_by_category(after.categories)  # taken from before's, new rows added
    assert after.rows_of_category.keys() == expected_rows.keys()
    for category, rows in expected_rows.items():
        np.testing.assert_array_equal(after.rows_of_category[category], rows)
    assert after.row_of_sku == {sku: row for row, sku in enumerate(after.skus)}
    whole = built_whole(before, after.skus, after.categories, after.vectors, outfit_skus)
    np.testing.assert_array_equal(after.neighbours, whole.neighbours)
    np.testing.assert_allclose(after.neighbour_scores, whole.listed_scores(), rtol=1e-5, atol=1e-6)
    for category in ("Shoes", "Belts"):
        assert after.indexes[category] is not before.indexes[category]
        assert after.indexes[category].ntotal == len(after.rows_of_category[category])
        assert before.indexes[category].ntotal == len(before.rows_of_category[category])
    for sku in after.skus:
        for other in after.complements_of(after.categories[after.row_of_sku[sku]]):
            got, expected = (
                after.nearest(sku, other, DEPTH + 5),
                whole.nearest(sku, other, DEPTH + 5),
            )
            assert [s for s, _ in got] == [s for s, _ in expected], (sku, other)
    entered = {int(r) for r in np.asarray(after.neighbours[: len(before.skus)]).ravel()}
    assert entered & {after.row_of_sku[sku] for sku in added}


def test_an_unchanged_category_keeps_its_index_and_no_change_is_the_same_index(version):
    before, _, rng = version
    after = refreshed(before, {"NEW": Upsert("Shoes", unit(rng, 1)[0])}, [])
    assert after.indexes["Tops"] is before.indexes["Tops"]  # nothing renumbered: reused
    assert after.indexes["Shoes"] is not before.indexes["Shoes"]
    same = refreshed(before, {}, ["NOT-THERE"])
    np.testing.assert_array_equal(same.neighbours, before.neighbours)
    assert same.skus == before.skus


def test_a_saved_refresh_links_the_files_of_the_indexes_it_left_as_they_were(version, tmp_path):
    """Not written again, and so not hashed again by a web process that read them before."""
    small, _, rng = version
    small.save(tmp_path / "v1")
    before = CompatibilityIndex.load(tmp_path / "v1")
    after = refreshed(before, {"NEW": Upsert("Shoes", unit(rng, 1)[0])}, [])
    after.save(tmp_path / "v2")
    loaded = CompatibilityIndex.load(tmp_path / "v2")

    def inode(index: CompatibilityIndex, category: str) -> int:
        return os.stat(index.index_files[category]).st_ino

    assert inode(loaded, "Tops") == inode(before, "Tops")
    assert inode(loaded, "Shoes") != inode(before, "Shoes")
    assert loaded.indexes["Shoes"].ntotal == before.indexes["Shoes"].ntotal + 1
    assert loaded.nearest(loaded.skus[0], "Tops", 5) == before.nearest(before.skus[0], "Tops", 5)


def test_a_category_the_version_never_saw_stands_in_for_a_known_one(version):
    before, outfit_skus, rng = version
    upserts = {f"SNK{n}": Upsert("Sneakers", v) for n, v in enumerate(unit(rng, 6))}
    after = refreshed(before, upserts, [], fallbacks={"Sneakers": "Shoes"})

    assert after.category_fallbacks == {"Sneakers": "Shoes"}
    assert after.complements["Sneakers"] == before.complements_of("Shoes")
    for category, others in after.complements.items():
        if "Shoes" in others and category != "Sneakers":
            assert others[others.index("Shoes") + 1] == "Sneakers", category
    for other in before.complements_of("Shoes"):
        shoes = before.scorer.pair_weights.between("Shoes", other)
        sneakers = after.scorer.pair_weights.between("Sneakers", other)
        assert (shoes is None) == (sneakers is None)
        if shoes is not None:
            np.testing.assert_array_equal(sneakers, shoes)
    if before.scorer.centres.weight:  # and the hub penalty's centre
        centres = after.scorer.centres.centres
        np.testing.assert_array_equal(centres["Sneakers"], centres["Shoes"])
    # Both directions, as the whole build with those complements and weights gives them.
    whole = built_whole(
        before, after.skus, after.categories, after.vectors, outfit_skus, like=after
    )
    np.testing.assert_array_equal(after.neighbours, whole.neighbours)
    top = after.rows_of_category["Tops"][0]
    assert after.nearest(after.skus[top], "Sneakers", 3)


def test_a_large_categorys_graph_is_linked_and_its_new_items_scanned_beside_it(
    version, tmp_path, monkeypatch
):
    """A category searched through an HNSW graph keeps its graph's file (hard-linked into the
    refreshed directory, not written again) and takes new items in a scanned index beside it,
    answering as the whole build's graph; past GROWN_UP_TO of it, its graph is built again."""
    monkeypatch.setattr(index_module, "GRAPH_FROM", 50)  # Tops (60) and Trousers (50): graphs
    small, outfit_skus, rng = version
    built = built_whole(small, small.skus, small.categories, small.vectors, outfit_skus)
    built.save(tmp_path / "v1")
    before = CompatibilityIndex.load(tmp_path / "v1")
    assert index_kind(len(before.rows_of_category["Tops"])) == "hnsw"
    added = {f"NEW{n}": Upsert("Tops", v) for n, v in enumerate(unit(rng, 2))}  # 2 ≤ 5% of 60

    after = refreshed(before, added, [])
    after.save(tmp_path / "v2")
    loaded = CompatibilityIndex.load(tmp_path / "v2")

    tops = loaded.indexes["Tops"]
    assert isinstance(tops, GrownIndex) and tops.ntotal == 62 and tops.added.ntotal == 2
    graph_file = before.index_files["Tops"]
    assert os.stat(tops.graph_file).st_ino == os.stat(graph_file).st_ino  # linked
    assert not isinstance(loaded.indexes["Trousers"], GrownIndex)  # gained nothing
    whole = built_whole(before, after.skus, after.categories, after.vectors, outfit_skus)
    np.testing.assert_array_equal(loaded.neighbours, whole.neighbours)
    for sku in loaded.skus:
        if "Tops" in loaded.complements_of(loaded.categories[loaded.row_of_sku[sku]]):
            got, expected = loaded.nearest(sku, "Tops", 20), whole.nearest(sku, "Tops", 20)
            assert [s for s, _ in got] == [s for s, _ in expected], sku
            np.testing.assert_allclose([x for _, x in got], [x for _, x in expected], 1e-5)

    more = {f"MORE{n}": Upsert("Tops", v) for n, v in enumerate(unit(rng, 2))}  # 4 > 5%
    again = refreshed(loaded, more, [])
    assert not isinstance(again.indexes["Tops"], GrownIndex)
    assert again.indexes["Tops"].ntotal == 64


def test_a_refresh_saves_the_rows_that_changed_beside_the_files_it_came_from(
    version, tmp_path, monkeypatch
):
    """Vectors, lists and their scores: the loaded version's files linked (not written or
    hashed again), the rows the refresh changed beside them; a refresh of that keeps the
    first files; answers as the whole build; past LAYERED_UP_TO of the rows, whole again."""
    # A newcomer enters about 36 of this small catalog's 186 items' lists: two, 60 (32%).
    monkeypatch.setattr(layered, "LAYERED_UP_TO", 0.4)
    built, outfit_skus, rng = version
    built.save(tmp_path / "v1")
    v1 = CompatibilityIndex.load(tmp_path / "v1")
    names = (VECTORS_FILE, NEIGHBOURS_FILE, NEIGHBOUR_SCORES_FILE)
    directory = tmp_path / "v1"
    for step, (sku, category) in enumerate([("NEW0", "Shoes"), ("NEW1", "Trousers")], start=2):
        before = CompatibilityIndex.load(directory)
        after = refreshed(before, {sku: Upsert(category, unit(rng, 1)[0])}, [])
        directory = tmp_path / f"v{step}"
        after.save(directory)
        loaded = CompatibilityIndex.load(directory)
        for name in names:
            assert os.stat(directory / name).st_ino == os.stat(tmp_path / "v1" / name).st_ino
            assert (directory / f"{name}{ROWS_SUFFIX}").is_file()
        overlaid = loaded.layers[VECTORS_FILE].rows.tolist()
        assert overlaid == list(range(len(v1.skus), len(loaded.skus)))  # the added rows only
        assert 0 < len(loaded.layers[NEIGHBOURS_FILE].rows) <= 0.4 * len(loaded.skus)
        np.testing.assert_array_equal(np.asarray(loaded.vectors), after.vectors)
        np.testing.assert_array_equal(np.asarray(loaded.neighbours), after.neighbours)
        np.testing.assert_array_equal(np.asarray(loaded.neighbour_scores), after.neighbour_scores)
        whole = built_whole(before, loaded.skus, loaded.categories, after.vectors, outfit_skus)
        np.testing.assert_array_equal(np.asarray(loaded.neighbours), whole.neighbours)
        for sku in loaded.skus:
            category = loaded.categories[loaded.row_of_sku[sku]]
            for other in loaded.complements_of(category):
                got, expected = loaded.nearest(sku, other, DEPTH), whole.nearest(sku, other, DEPTH)
                assert [s for s, _ in got] == [s for s, _ in expected], (sku, other)

    many = {f"MANY{n}": Upsert("Tops", v) for n, v in enumerate(unit(rng, 150))}  # 45%
    after = refreshed(CompatibilityIndex.load(directory), many, [])
    after.save(tmp_path / "whole")
    for name in names:
        assert os.stat(tmp_path / "whole" / name).st_ino != os.stat(directory / name).st_ino
        assert not (tmp_path / "whole" / f"{name}{ROWS_SUFFIX}").exists()
    np.testing.assert_array_equal(
        CompatibilityIndex.load(tmp_path / "whole").vectors, after.vectors
    )


def test_a_refresh_saves_its_new_skus_and_categories_beside_the_files_it_came_from(
    version, tmp_path
):
    """SKUs and category codes: the loaded version's files linked, the added SKUs and the
    changed rows' categories beside them. A process that serves the earlier version takes
    what the two share from it (SKUs, categories, their rows, the unchanged categories'
    indexes) instead of reading a 1M catalog again, and gets what reading it whole gives."""
    built, _, rng = version
    built.save(tmp_path / "v1")
    served = CompatibilityIndex.load(tmp_path / "v1")
    served.row_of_sku, served.rows_of_category  # noqa: B018  (as a web process has them)
    directory, loaded = tmp_path / "v1", served
    recategorised = built.skus[3]  # a Tops item, now Hats: a category the version never saw
    changes = [
        {"NEW0": Upsert("Shoes", unit(rng, 1)[0]), "NEW1": Upsert("Belts", unit(rng, 1)[0])},
        {"NEW2": Upsert("Shoes", unit(rng, 1)[0]), recategorised: Upsert("Hats", unit(rng, 1)[0])},
    ]
    for step, upserts in enumerate(changes, start=2):
        after = refreshed(CompatibilityIndex.load(directory), upserts, [], {"Hats": "Tops"})
        directory = tmp_path / f"v{step}"
        after.save(directory)
        for name in (index_module.SKUS_FILE, index_module.CATEGORY_CODES_FILE):
            assert os.stat(directory / name).st_ino == os.stat(tmp_path / "v1" / name).st_ino
        added = json.loads((directory / index_module.ADDED_SKUS_FILE).read_text())
        assert added == after.skus[len(built.skus) :]

        read_whole = CompatibilityIndex.load(directory)
        loaded = CompatibilityIndex.load(directory, previous=loaded)
        assert isinstance(loaded.row_of_sku, index_module.RowsOfSkus)  # taken, not read
        for index in (read_whole, loaded):
            assert (index.skus, index.categories) == (after.skus, after.categories)
            assert dict(index.row_of_sku) == {sku: row for row, sku in enumerate(after.skus)}
            expected = rows_by_category(after.categories)
            assert list(index.rows_of_category) == list(expected)
            for category, rows in expected.items():
                np.testing.assert_array_equal(index.rows_of_category[category], rows)
        unchanged = [c for c in served.indexes if c not in {"Shoes", "Belts", "Tops", "Hats"}]
        assert unchanged and all(loaded.indexes[c] is served.indexes[c] for c in unchanged)
        for sku in after.skus[::7]:
            category = after.categories[after.row_of_sku[sku]]
            for other in after.complements_of(category):
                assert loaded.nearest(sku, other, DEPTH) == read_whole.nearest(sku, other, DEPTH)
    assert loaded.categories[loaded.row_of_sku[recategorised]] == "Hats"

    # Another version's files: nothing taken from it. A removal renumbers: written whole.
    other = dataclasses.replace(built, skus=[f"X{sku}" for sku in built.skus])
    other.save(tmp_path / "other")
    foreign = CompatibilityIndex.load(tmp_path / "other", previous=loaded)
    assert foreign.skus == other.skus and foreign.categories == built.categories
    assert foreign.row_of_sku == {sku: row for row, sku in enumerate(other.skus)}
    removed = refreshed(CompatibilityIndex.load(directory), {}, [built.skus[0]])
    removed.save(tmp_path / "removed")
    assert not (tmp_path / "removed" / index_module.ADDED_SKUS_FILE).exists()
    again = CompatibilityIndex.load(tmp_path / "removed", previous=loaded)
    assert again.skus == removed.skus and again.categories == removed.categories
