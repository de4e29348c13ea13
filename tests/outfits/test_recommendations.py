"""The recommendation service on a hand-made model: ranking, diversity, filters, why, pins and
blocks, and complete-the-look."""

from decimal import Decimal

import numpy as np
import pytest

from catalog.catalog_rows import default_title
from embeddings.engine.diversity import (
    diverse_picks,
    diverse_positions,
    most_relevant_and_diverse,
    most_relevant_and_diverse_rows,
)
from outfits import recommendations
from outfits.models import BlockedPair, BlockedProduct, PinnedMatch
from outfits.recommendations import (
    CURATED,
    LEARNED,
    PINNED,
    MatchFilters,
    complete_the_look,
    diverse_rows_by_arrays,
    goes_well_with,
    goes_well_with_each,
    model_version_of_rec_id,
)


def rows_of(found) -> dict[str, list[str]]:
    return {g.category.name: [m.product.sku for m in g.matches] for g in found.groups}


def test_maximal_marginal_relevance_prefers_a_different_item_to_a_near_duplicate():
    vectors = np.asarray([[1, 0], [0.999, 0.045], [0.6, 0.8]], dtype=np.float32)
    candidates = [(0, 0.9), (1, 0.89), (2, 0.8)]
    assert most_relevant_and_diverse(candidates, vectors, 2, relevance=1.0) == candidates[:2]
    assert most_relevant_and_diverse(candidates, vectors, 2, relevance=0.7) == [
        (0, 0.9),
        (2, 0.8),
    ]


def test_diverse_picks_skip_what_may_not_be_shown_as_if_it_were_not_there():
    """The arrays of many answers keep their hidden candidates in place, masked: the picks
    are those of the row without them."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = rng.permutation(40)[:36].reshape(3, 12)
    scores = -np.sort(-rng.uniform(0, 1, (3, 12)), axis=1).astype(np.float32)
    shown = rng.uniform(0, 1, (3, 12)) < 0.6
    shown[2] = False
    for relevance in (0.7, 1.0):
        picked = diverse_picks(ids, scores, shown, vectors, 4, relevance)
        for row, positions in enumerate(picked):
            kept = np.flatnonzero(shown[row]).tolist()
            alone = diverse_positions(
                [[(int(ids[row, p]), float(scores[row, p])) for p in kept]], vectors, 4, relevance
            )[0]
            assert positions == [kept[p] for p in alone]
    assert picked[2] == []


def one_row_at_a_time(candidates, vectors, count, relevance):
    """MMR as its definition reads: the reference for the vectorised one."""
    picked: list[int] = []
    while len(picked) < min(count, len(candidates)):
        value = [
            -np.inf
            if i in picked
            else relevance * score
            - (1 - relevance)
            * max((float(vectors[row] @ vectors[candidates[j][0]]) for j in picked), default=0)
            for i, (row, score) in enumerate(candidates)
        ]
        picked.append(int(np.argmax(value)))
    return [candidates[i] for i in picked]


def test_rows_of_different_lengths_are_diversified_together_as_each_alone():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        [
            (int(r), float(s))
            for r, s in zip(rng.choice(60, n, replace=False), rng.random(n), strict=True)
        ]
        for n in (7, 0, 1, 12, 3)
    ]
    for relevance in (0.0, 0.5, 0.8):
        together = most_relevant_and_diverse_rows(rows, vectors, 4, relevance)
        assert together == [one_row_at_a_time(r, vectors, 4, relevance) for r in rows]
        assert [len(r) for r in together] == [4, 0, 1, 4, 3]


def test_rows_are_best_first_diverse_and_never_the_own_category(handmade_shop, settings):
    settings.OUTFITS_MATCH_DIVERSITY = 0.0
    plain = goes_well_with(handmade_shop["T1"])
    assert plain.in_model and plain.model_version == "handmade-1"
    assert rows_of(plain)["Trousers"] == ["P1", "P2", "P3"]  # by score alone
    settings.OUTFITS_MATCH_DIVERSITY = 0.3
    found = goes_well_with(handmade_shop["T1"])
    rows = rows_of(found)
    assert rows["Trousers"][:2] == ["P1", "P3"]  # P2, P1's near-twin, is pushed down
    assert "Tops" not in rows and set(rows) == {"Trousers", "Shoes", "Bags", "Skirts"}
    assert list(rows)[0] == "Shoes"  # the category stylists pair with tops most often
    assert model_version_of_rec_id(found.rec_id) == handmade_shop.version.pk


def test_why_says_curated_for_items_stylists_put_with_it(handmade_shop):
    found = goes_well_with(handmade_shop["T1"], limit=5)
    why = {m.product.sku: m.why for g in found.groups for m in g.matches}
    assert why["P4"] == why["S1"] == why["B1"] == CURATED  # T1's own outfit
    assert why["P1"] == why["S2"] == LEARNED


def test_stock_price_and_category_filters(handmade_shop):
    handmade_shop["P1"].in_stock = False
    handmade_shop["P1"].save()
    assert "P1" not in rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
    with_out_of_stock = goes_well_with(
        handmade_shop["T1"], filters=MatchFilters(in_stock_only=False)
    )
    assert "P1" in rows_of(with_out_of_stock)["Trousers"]
    cheap = goes_well_with(handmade_shop["T1"], filters=MatchFilters(price_max=Decimal("20")))
    prices = [m.product.price for g in cheap.groups for m in g.matches]
    assert prices and max(prices) <= 20
    only = goes_well_with(handmade_shop["T1"], filters=MatchFilters(categories=["Bags"]))
    assert list(rows_of(only)) == ["Bags"]


def test_inactive_products_are_never_matches(handmade_shop):
    handmade_shop["S1"].active = False
    handmade_shop["S1"].save()
    for sku in ["T1", "T3", "P1", "B1"]:
        found = goes_well_with(handmade_shop[sku], limit=10)
        assert "S1" not in {m.product.sku for g in found.groups for m in g.matches}


def test_a_pin_takes_its_position_even_for_a_product_the_model_lacks(handmade_shop):
    PinnedMatch.objects.create(product=handmade_shop["T1"], match=handmade_shop["P4"], position=1)
    trousers = next(
        g for g in goes_well_with(handmade_shop["T1"]).groups if g.category.name == "Trousers"
    )
    assert (trousers.matches[0].product.sku, trousers.matches[0].why) == ("P4", PINNED)
    assert trousers.matches[0].score == pytest.approx(0.3, abs=0.01)  # its real score
    assert [m.product.sku for m in trousers.matches[1:]] == ["P1", "P3"]

    belt = handmade_shop["B1"].__class__.objects.create(
        sku="NEW-BELT", title="New belt", category=handmade_shop["B1"].category
    )
    PinnedMatch.objects.create(product=handmade_shop["T1"], match=belt, position=2)
    bags = next(g for g in goes_well_with(handmade_shop["T1"]).groups if g.category.name == "Bags")
    assert bags.matches[1].product.sku == "NEW-BELT" and bags.matches[1].score is None


def test_blocks_are_honoured_at_once(handmade_shop):
    BlockedPair.objects.create(product=handmade_shop["P1"], other=handmade_shop["T1"])
    assert "P1" not in rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]  # both ways
    assert "P1" in rows_of(goes_well_with(handmade_shop["S1"], limit=5))["Trousers"]
    BlockedProduct.objects.create(product=handmade_shop["S1"])
    for sku in ["T1", "P1", "B2"]:
        shown = {
            m.product.sku
            for g in goes_well_with(handmade_shop[sku], limit=5).groups
            for m in g.matches
        }
        assert "S1" not in shown
    PinnedMatch.objects.create(product=handmade_shop["T1"], match=handmade_shop["S1"], position=1)
    assert "S1" not in rows_of(goes_well_with(handmade_shop["T1"], limit=5))["Shoes"]


def test_a_product_newer_than_the_model_gets_no_model_matches(handmade_shop):
    newcomer = handmade_shop["T1"].__class__.objects.create(
        sku="NEW-TOP", title="New top", category=handmade_shop["T1"].category
    )
    found = goes_well_with(newcomer)
    assert found.model_version == "handmade-1" and not found.in_model and found.groups == []


def test_complete_the_look_picks_one_per_category_and_no_clashing_categories(handmade_shop):
    look = complete_the_look([handmade_shop["T1"]])
    categories = [m.product.category.name for m in look.items]
    assert len(categories) == len(set(categories)) >= 3
    assert not {"Trousers", "Skirts"} <= set(categories)  # never in one outfit
    assert "Tops" not in categories
    assert look.score is not None and look.shuffle == 0

    second = complete_the_look([handmade_shop["T1"]], shuffle=1)
    assert [m.product.sku for m in second.items] != [m.product.sku for m in look.items]
    assert second.score <= look.score


def test_a_look_is_ranked_by_the_served_score_of_the_whole_outfit(handmade_shop):
    """Anchors included: the score an outfit-level scorer gives the outfit read whole (the
    pairs' mean would leave the anchors' own pair out)."""
    from embeddings.loaded_versions import active_compatibility_index

    anchors = [handmade_shop["T1"], handmade_shop["S2"]]
    looks = [complete_the_look(anchors, shuffle=n) for n in range(3)]
    _, index = active_compatibility_index()
    for look in looks:
        whole = [*(a.sku for a in anchors), *(m.product.sku for m in look.items)]
        assert look.score == pytest.approx(float(index.outfit_scores([whole])[0]), abs=1e-6)
    distinct = [look for n, look in enumerate(looks) if look.shuffle == n]  # shuffles wrap round
    assert len(distinct) >= 2
    assert all(a.score >= b.score for a, b in zip(distinct, distinct[1:], strict=False))


def test_complete_the_look_with_one_category_is_the_fill_in_the_blank_answer(handmade_shop):
    look = complete_the_look([handmade_shop["T1"]], ["Trousers"])
    assert [m.product.sku for m in look.items] == ["P1"]  # highest score with T1
    both = complete_the_look([handmade_shop["T1"], handmade_shop["S2"]], ["Trousers"])
    # With S2 in the outfit P3 (close to S2) beats P1: the mean over the partial outfit counts.
    assert [m.product.sku for m in both.items] == ["P3"]


def test_a_row_shows_one_of_products_with_the_same_title_and_colour(handmade_shop):
    before = rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
    assert {"P1", "P2"} <= set(before)  # near twins: MMR alone keeps both
    twin = handmade_shop["P2"]
    twin.title, twin.colour = handmade_shop["P1"].title, handmade_shop["P1"].colour
    twin.save()
    after = rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
    assert "P1" in after and "P2" not in after and len(after) == len(before)


def test_a_title_the_import_made_up_tells_no_twins_their_picture_does(handmade_shop):
    """An export without titles gets "<colour> <category>" for each product (Mango: 300
    titles for 9,222 products): different garments of one colour are not twins, and only
    one of them per row would hide good matches. The same picture is a twin."""
    p1, p2 = handmade_shop["P1"], handmade_shop["P2"]
    for product, picture in ((p1, "products/aa/one.jpg"), (p2, "products/bb/two.jpg")):
        product.title = default_title("Black", product.category.name)
        product.colour, product.image, product.title_made_up = "Black", picture, True
        product.save()
    everyone = list(handmade_shop.products.values())

    def trousers_of_t1() -> tuple[list[str], list[str]]:
        alone = rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
        together = rows_of(goes_well_with_each(everyone)[everyone.index(handmade_shop["T1"])])
        return alone, together["Trousers"]

    alone, together = trousers_of_t1()
    assert {"P1", "P2"} <= set(alone) and alone == together
    p2.image = p1.image  # one picture for two SKUs: the shopper sees the same product twice
    p2.save()
    alone, together = trousers_of_t1()
    assert "P1" in alone and "P2" not in alone and alone == together


def test_a_row_shows_one_colourway_of_a_style(handmade_shop):
    """Two colourways of one garment (different titles, colours and pictures) share the
    catalog's style code: a row shows the better one, as a distinct attribute does."""
    everyone = list(handmade_shop.products.values())
    before = rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
    assert {"P1", "P2"} <= set(before)
    for sku in ("P1", "P2"):
        handmade_shop[sku].style = "TROUSER-41085800"
        handmade_shop[sku].save()
    alone = rows_of(goes_well_with(handmade_shop["T1"]))["Trousers"]
    together = rows_of(goes_well_with_each(everyone)[everyone.index(handmade_shop["T1"])])
    assert len({"P1", "P2"} & set(alone)) == 1 and alone == together["Trousers"]
    assert alone[0] == before[0]  # the better colourway keeps its place


def test_an_asked_for_look_is_still_wearable(handmade_shop):
    """Categories asked for that stylists never combine (trousers and a skirt), or the anchor's
    own (a second top), are not put together: the outfits' structure decides, not the list."""
    look = complete_the_look([handmade_shop["T1"]], ["Trousers", "Skirts", "Shoes"])
    categories = [m.product.category.name for m in look.items]
    assert "Shoes" in categories and len({"Trousers", "Skirts"} & set(categories)) == 1
    look = complete_the_look([handmade_shop["T1"]], ["Tops", "Shoes"])
    assert [m.product.category.name for m in look.items] == ["Shoes"]


def test_each_shuffle_changes_at_least_two_pieces_of_every_better_look(handmade_shop):
    looks = [
        {m.product.sku for m in complete_the_look([handmade_shop["T1"]], shuffle=n).items}
        for n in range(4)
    ]
    assert len(looks[0]) >= 3
    for n, look in enumerate(looks[1:], start=1):
        assert all(len(look - better) >= 2 for better in looks[:n]), (n, looks)


def test_complete_the_look_honours_blocks_and_stock(handmade_shop):
    best = complete_the_look([handmade_shop["T1"]])
    first = handmade_shop[best.items[0].product.sku]
    BlockedPair.objects.create(product=handmade_shop["T1"], other=first)
    assert first.sku not in [m.product.sku for m in complete_the_look([handmade_shop["T1"]]).items]
    first.in_stock = False
    first.save()
    BlockedPair.objects.all().delete()
    assert first.sku not in [m.product.sku for m in complete_the_look([handmade_shop["T1"]]).items]


def test_a_new_active_version_is_served_at_once(handmade_shop, handmade_version):
    handmade_version(["T1", "P1", "S1"], "handmade-2")
    found = goes_well_with(handmade_shop["T1"], limit=5)
    assert found.model_version == "handmade-2"
    # Its outfits pair tops with shoes only: trousers are not complementary in it.
    assert {m.product.sku for g in found.groups for m in g.matches} == {"S1"}


def shown_rows(found) -> list[tuple[str, list[tuple[str, float | None, str]]]]:
    return [
        (group.category.name, [(m.product.sku, m.score and round(m.score, 5), m.why) for m in row])
        for group in found.groups
        for row in [group.matches]
    ]


@pytest.mark.parametrize("diversity", [0.3, 0.0], ids=["diverse", "by score alone"])
def test_answers_of_many_products_together_are_each_ones_own(
    handmade_shop, settings, monkeypatch, diversity
):
    """A batch or an export works its products out together, the visibility of their
    candidates read from arrays (row_facts): each answer must be the one its product gets
    alone, whatever hides a candidate: twins, blocks, stock, exclusions, an inactive product,
    a product moved to another category since the training, pins."""
    settings.OUTFITS_MATCH_DIVERSITY = diversity
    by_arrays = []  # how many rows each call worked out on arrays

    def spied(*args):
        by_arrays.append(len(rows := diverse_rows_by_arrays(*args)))
        return rows

    monkeypatch.setattr(recommendations, "diverse_rows_by_arrays", spied)
    twin = handmade_shop["P2"]
    twin.title, twin.colour = handmade_shop["P1"].title, handmade_shop["P1"].colour
    twin.save()
    BlockedPair.objects.create(product=handmade_shop["P1"], other=handmade_shop["T1"])
    BlockedProduct.objects.create(product=handmade_shop["S2"])
    PinnedMatch.objects.create(product=handmade_shop["T2"], match=handmade_shop["B2"], position=1)
    for sku, field, value in [("B1", "in_stock", False), ("K2", "active", False)]:
        setattr(handmade_shop[sku], field, value)
        handmade_shop[sku].save()
    moved = handmade_shop["S3"]
    moved.category = handmade_shop["B1"].category  # the model has it as shoes
    moved.save()
    everyone = list(handmade_shop.products.values())
    for filters in [
        MatchFilters(),
        MatchFilters(in_stock_only=False, exclude=frozenset({"S1", "T3"})),
        MatchFilters(categories=["Shoes", "Bags", "Tops"]),
    ]:
        together = goes_well_with_each(everyone, limit=2, filters=filters)
        alone = [goes_well_with(product, limit=2, filters=filters) for product in everyone]
        assert [shown_rows(a) for a in together] == [shown_rows(a) for a in alone]
    assert len(by_arrays) == 3 and min(by_arrays) >= 20
    # Not in the arrays' reach (a price, attributes): worked out one by one, the same.
    priced = MatchFilters(price_max=Decimal("30"))
    assert [shown_rows(a) for a in goes_well_with_each(everyone, filters=priced)] == [
        shown_rows(goes_well_with(product, filters=priced)) for product in everyone
    ]
    assert len(by_arrays) == 3


def test_many_answers_follow_each_change_to_the_catalog(handmade_shop):
    """The arrays are kept with the catalog snapshot and patched for the products changed
    since: a change shows at once, in answers of many products as in each one's own."""
    everyone = list(handmade_shop.products.values())
    before = [shown_rows(a) for a in goes_well_with_each(everyone)]
    assert before == [shown_rows(goes_well_with(product)) for product in everyone]
    handmade_shop["P1"].in_stock = False
    handmade_shop["P1"].save()
    twin = handmade_shop["S2"]
    twin.title, twin.colour = handmade_shop["S1"].title, handmade_shop["S1"].colour
    twin.save()
    after = [shown_rows(a) for a in goes_well_with_each(everyone)]
    assert after == [shown_rows(goes_well_with(product)) for product in everyone]
    shown = [{sku for _, row in rows for sku, _, _ in row} for rows in after]
    assert not any("P1" in skus for skus in shown)
    assert not any({"S1", "S2"} <= skus for skus in shown)
    assert after != before
