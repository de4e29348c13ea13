import numpy as np

from embeddings.engine.triplets import mine_triplets

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
