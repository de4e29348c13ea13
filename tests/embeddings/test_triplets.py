import numpy as np

from embeddings.engine.triplets import mine_triplets, worn_by_category

CATEGORIES = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])  # three items in each of three categories
OUTFITS = [[0, 3, 6], [1, 4], [2, 5, 8]]


def test_triplets_pair_outfit_members_with_negatives_of_the_positives_category():
    triplets = mine_triplets(OUTFITS, CATEGORIES, np.random.default_rng(0))
    outfit_of = {item: set(outfit) for outfit in OUTFITS for item in outfit}
    assert len(triplets) == 6 + 2 + 6  # every ordered pair of different-category members
    for anchor, positive, negative in triplets:
        assert positive in outfit_of[anchor] and positive != anchor
        assert CATEGORIES[negative] == CATEGORIES[positive]
        assert negative not in outfit_of[anchor]


def test_same_category_pairs_and_impossible_negatives_are_skipped():
    categories = np.array([0, 0, 1, 0])
    # items 0 and 1 share a category: no pair; item 2 is the only one of its category: no negative
    triplets = mine_triplets([[0, 1, 2]], categories, np.random.default_rng(0))
    assert {tuple(row[:2]) for row in triplets} == {(2, 0), (2, 1)}
    assert set(triplets[:, 2]) == {3}
    assert mine_triplets([], categories, np.random.default_rng(0)).shape == (0, 3)


def test_negatives_vary_between_epochs():
    categories = np.repeat(np.arange(2), 50)
    rng = np.random.default_rng(1)
    first, second = (mine_triplets([[0, 50]], categories, rng) for _ in range(2))
    assert not np.array_equal(first[:, 2], second[:, 2])


def test_worn_pools_hold_each_item_as_often_as_outfits_wear_it():
    pools = worn_by_category([[0, 3], [0, 4, 6], [1, 3]], CATEGORIES)
    assert sorted(pools[0].tolist()) == [0, 0, 1]
    assert sorted(pools[1].tolist()) == [3, 3, 4]
    assert pools[2].tolist() == [6]


def test_negatives_drawn_from_worn_pools_are_never_an_unworn_item():
    categories = np.repeat(np.arange(2), 50)  # items 0-49 and 50-99
    outfits = [[0, 50], [1, 51], [2, 52]]
    rng = np.random.default_rng(0)
    pools = worn_by_category(outfits, categories)
    triplets = np.concatenate([mine_triplets(outfits, categories, rng, pools=pools)] * 20)
    assert set(triplets[:, 2].tolist()) <= {0, 1, 2, 50, 51, 52}
    uniform = mine_triplets(outfits * 20, categories, rng)  # every item alike: mostly unworn
    assert not set(uniform[:, 2].tolist()) <= {0, 1, 2, 50, 51, 52}


def test_verdicts_give_triplets_both_ways_and_bad_pairs_are_negatives_of_a_positive():
    from embeddings.engine.triplets import Verdicts, verdict_triplets

    outfit_of = {item: set(outfit) for outfit in OUTFITS for item in outfit}
    # good: 1 and 7 (categories 0, 2); bad: 0 with 5 (0's trousers-like mate is 3)
    verdicts = Verdicts.of(good=[(1, 7)], bad=[(0, 5), (1, 8)])
    triplets, from_bad = verdict_triplets(verdicts, OUTFITS, CATEGORIES, np.random.default_rng(0))
    rows = [tuple(map(int, t)) for t in triplets]
    good = [t for t, bad in zip(rows, from_bad, strict=True) if not bad]
    bad = [t for t, bad in zip(rows, from_bad, strict=True) if bad]
    assert {t[:2] for t in good} == {(1, 7), (7, 1)}
    for anchor, positive, negative in good:
        assert CATEGORIES[negative] == CATEGORIES[positive] and negative not in (anchor, positive)
    # (0, 5): 0's positive of 5's category is its outfit-mate 3; 5's of 0's category is 2.
    # (1, 8): 1's positive of 8's category is 7 (a good pair); 8's of 1's category is 2.
    assert sorted(bad) == sorted([(0, 3, 5), (5, 2, 0), (1, 7, 8), (8, 2, 1)])
    assert all(positive in outfit_of.get(anchor, set()) | {7} for anchor, positive, _ in bad)
    lonely, flags = verdict_triplets(
        Verdicts.of([], [(0, 6)]), [[1, 4]], CATEGORIES, np.random.default_rng(0)
    )
    assert lonely.shape == (0, 3) and flags.shape == (0,)  # no positive to set against: skipped


def test_a_stylists_good_pair_draws_its_negative_as_the_outfits_wear_items():
    """As the outfits' own triplets do; a category no outfit wears keeps every item of it."""
    from embeddings.engine.triplets import Verdicts, negative_pools, verdict_triplets

    categories = np.repeat(np.arange(3), 50)  # items 0-49, 50-99, 100-149; no outfit wears 2
    outfits = [[0, 50], [1, 51], [2, 52]]
    worn = {0, 1, 2, 50, 51, 52}
    pools = negative_pools(outfits, categories, as_worn=True)
    verdicts = Verdicts.of(good=[(3, 53), (4, 100)], bad=[])
    rng = np.random.default_rng(0)
    triplets = np.concatenate(
        [verdict_triplets(verdicts, outfits, categories, rng, pools=pools)[0] for _ in range(20)]
    )
    in_worn_categories = categories[triplets[:, 1]] != 2
    assert set(triplets[in_worn_categories, 2].tolist()) <= worn
    unworn_category = set(triplets[~in_worn_categories, 2].tolist())
    assert len(unworn_category) > 5 and all(categories[n] == 2 for n in unworn_category)
    assert 100 not in unworn_category
    uniform = negative_pools(outfits, categories, as_worn=False)
    assert len(set(np.concatenate(list(uniform.values())).tolist())) == 150
