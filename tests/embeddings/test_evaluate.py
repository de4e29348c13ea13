import numpy as np

from embeddings.evaluate import fitb_accuracy, make_fitb_questions, split_outfits


def clustered_space(item_count: int, cluster_of: np.ndarray, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(cluster_of.max() + 1, 16))
    vectors = centres[cluster_of] + noise * rng.normal(size=(item_count, 16))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_questions_blank_an_outfit_item_among_same_category_answers():
    categories = np.repeat(np.arange(3), 10)
    outfits = [[0, 10, 20], [1, 11, 21], [2, 12]]
    questions = make_fitb_questions(outfits, categories, np.random.default_rng(0))
    assert len(questions) == 3
    for outfit, q in zip(outfits, questions, strict=True):
        right = q.answers[q.correct]
        assert right in outfit and right not in q.question
        assert set(q.question) | {right} == set(outfit)
        assert len(set(q.answers)) == 4
        assert {categories[a] for a in q.answers} == {categories[right]}


def test_fitb_is_high_in_a_space_that_knows_the_outfits_and_chance_in_one_that_does_not():
    categories = np.tile(np.arange(3), 40)  # 120 items
    style = np.repeat(np.arange(20), 6)  # outfits are drawn within a style
    outfits = [[i for i in range(120) if style[i] == s][:3] for s in range(20)]
    questions = make_fitb_questions(outfits, categories, np.random.default_rng(0))
    knowing = clustered_space(120, style, noise=0.1)
    ignorant = clustered_space(120, np.arange(120), noise=0.1)
    assert fitb_accuracy(knowing, questions) > 0.9
    assert fitb_accuracy(ignorant, questions) < 0.7


def test_split_is_a_partition_with_a_validation_part():
    train, validation = split_outfits(20, 0.15, np.random.default_rng(0))
    assert len(validation) == 3
    assert sorted([*train, *validation]) == list(range(20))
    assert np.isnan(fitb_accuracy(np.zeros((1, 2), np.float32), []))
