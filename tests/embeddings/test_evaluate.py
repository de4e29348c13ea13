import numpy as np

from embeddings.engine.evaluate import evaluate_tasks, make_tasks, split_outfits


def clustered_space(item_count: int, cluster_of: np.ndarray, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(cluster_of.max() + 1, 16))
    vectors = centres[cluster_of] + noise * rng.normal(size=(item_count, 16))
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return {str(i): vectors[i].astype(np.float32) for i in range(item_count)}


CATEGORY_OF = {str(i): f"c{i % 3}" for i in range(120)}


def test_fitb_blanks_an_outfit_item_among_same_category_answers():
    outfits = [["0", "1", "2"], ["3", "4", "5"], ["6", "7"]]
    fitb, compatibility = make_tasks(outfits, CATEGORY_OF, np.random.default_rng(0))
    assert len(fitb) == 3 and len(compatibility) == 6
    for outfit, task in zip(outfits, fitb, strict=True):
        right = task.answers[task.correct]
        assert right in outfit and right not in task.question
        assert set(task.question) | {right} == set(outfit)
        assert len(set(task.answers)) == 4 and task.category == CATEGORY_OF[right]
        assert {CATEGORY_OF[a] for a in task.answers} == {CATEGORY_OF[right]}
    real, corrupted = compatibility[0], compatibility[1]
    assert real.label == 1 and real.items == ("0", "1", "2") and corrupted.label == 0
    assert [CATEGORY_OF[s] for s in corrupted.items] == [CATEGORY_OF[s] for s in real.items]
    assert not set(corrupted.items) & set(real.items)


def test_an_answer_pool_restricts_blanks_and_wrong_answers_to_new_arrivals():
    pool = [str(i) for i in range(60, 120)]
    outfits = [["0", "61", "2"], ["3", "64", "95"]]
    fitb, _ = make_tasks(outfits, CATEGORY_OF, np.random.default_rng(1), answer_pool=pool)
    for task in fitb:
        assert set(task.answers) <= set(pool)


def test_a_space_that_knows_the_outfits_scores_high_and_one_that_does_not_scores_chance():
    style = np.repeat(np.arange(20), 6)  # outfits are drawn within a style
    outfits = [[str(i) for i in range(120) if style[i] == s][:3] for s in range(20)]
    fitb, compatibility = make_tasks(outfits, CATEGORY_OF, np.random.default_rng(0))
    knowing = evaluate_tasks(clustered_space(120, style, 0.1), fitb, compatibility)
    ignorant = evaluate_tasks(clustered_space(120, np.arange(120), 0.1), fitb, compatibility)
    assert knowing.fitb_accuracy > 0.9 and knowing.compatibility_auc > 0.95
    assert ignorant.fitb_accuracy < 0.7 and ignorant.compatibility_auc < 0.8


def _outfits(count: int, start: int = 0) -> list[list[str]]:
    return [[f"top-{i}", f"skirt-{i}", f"shoes-{i % 7}"] for i in range(start, start + count)]


def test_split_is_a_partition_with_a_validation_part():
    train, validation = split_outfits(_outfits(2000), 0.15)
    assert sorted([*train, *validation]) == list(range(2000))
    assert 0.13 < len(validation) / 2000 < 0.17
    # too few outfits for a 15% share still hold one out
    assert len(split_outfits(_outfits(2), 0.15)[1]) == 1
    assert len(split_outfits(_outfits(1), 0.15)[1]) == 0


def test_the_next_training_holds_out_the_same_outfits():
    """New outfits, another order or an outfit's items listed otherwise do not move an
    outfit between the parts: the version trained before never saw the next one's questions."""
    before = _outfits(500)
    held_out = {tuple(before[i]) for i in split_outfits(before, 0.15)[1]}
    after = [list(reversed(outfit)) for outfit in before] + _outfits(300, start=500)
    after.reverse()
    now_held_out = {tuple(reversed(after[i])) for i in split_outfits(after, 0.15)[1]}
    assert held_out and held_out < now_held_out
    assert len(now_held_out - held_out) > 20  # new outfits are held out in proportion too
