"""The outfits' evidence for known items: direct co-occurrence, the second-order walk, the
outfit-overlap vote and exposure, checked against their definitions written out over the
outfits; kept by a version and a refresh; weighted by what a training's held-out outfits say
(the learned blend, blend.py)."""

import math

import numpy as np
import pytest

from embeddings.engine.blend import (
    blank_signals,
    blend_features,
    conditional_logit,
    fitted_blend,
)
from embeddings.engine.cooccurrence import CoOccurrence
from embeddings.engine.evaluate import FitbTask, evaluate_tasks, every_blank
from embeddings.engine.fit import Validation
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer

OUTFITS = [[0, 1, 2], [1, 3], [3, 4, 0], [0, 2, 5], [2, 4, 6], [1, 2, 6, 7], [0, 1, 7]]
ITEMS = range(9)  # 8 is in no outfit


def together(a: int, b: int) -> int:
    return sum(a in outfit and b in outfit for outfit in OUTFITS)


def worn(item: int) -> int:
    return sum(together(item, other) for other in ITEMS if other != item)


def second_order(anchors: list[int], candidate: int) -> float:
    return sum(
        math.log1p(together(a, m)) * math.log1p(together(m, candidate)) / math.log1p(worn(m))
        for a in anchors
        for m in ITEMS
        if m not in (a, candidate) and together(a, m)
    ) / len(anchors)


def overlap(anchors: list[int], candidate: int) -> float:
    held = [len(set(anchors) & set(o)) for o in OUTFITS if candidate in o]
    return math.log1p(sum(n for n in held if n >= 2))


def direct(anchors: list[int], candidate: int) -> float:
    return sum(math.log1p(together(a, candidate)) for a in anchors) / len(anchors)


def exposure(anchors: list[int], candidate: int) -> list[float]:
    """How much it is worn; in no outfit; worn, never with an anchor."""
    never_with = not any(together(a, candidate) for a in anchors)
    return [math.log1p(worn(candidate)), worn(candidate) == 0, worn(candidate) > 0 and never_with]


@pytest.mark.parametrize("anchors", [[0, 1], [0, 2, 4], [3, 6], [1, 2, 7]])
def test_each_signal_is_its_definition_and_the_bonus_weighs_them(anchors):
    candidates = [row for row in ITEMS if row not in anchors]
    weights = [0.5, 2.0, 0.3, 0.2, -0.4, -1.0]
    evidence = CoOccurrence.from_outfits(OUTFITS, 0.0).weighted(*weights)
    found = evidence.signals(anchors, candidates)
    by_hand = np.array(
        [[f(anchors, c) for c in candidates] for f in (direct, second_order, overlap)]
        + np.array([exposure(anchors, c) for c in candidates], dtype=float).T.tolist()
    )
    np.testing.assert_allclose(found, by_hand, rtol=1e-5, atol=1e-6)
    assert found[1].any()  # these outfits make the walk say something
    np.testing.assert_allclose(
        evidence.bonus(anchors, candidates), np.array(weights) @ by_hand, rtol=1e-5, atol=1e-6
    )
    assert found[:, candidates.index(8)].tolist() == [0, 0, 0, 0, 1, 0]  # in no outfit
    # 5 is worn (with 0 and 2), never with 3 or 6; 4 is worn with both
    assert evidence.signals([3, 6], [5, 4])[5].tolist() == [1, 0]
    # Anchors in no outfit (a look of new arrivals) say nothing of what was never worn with them
    assert evidence.signals([8, 9], [5, 4])[5].tolist() == [0, 0]


def test_one_anchor_reads_the_direct_signal_alone():
    """A product page's row (one anchor) is what refresh.py keeps up to date pair by pair."""
    evidence = CoOccurrence.from_outfits(OUTFITS, 0.5, second_order=2.0, overlap=0.3)
    candidates = [2, 3, 4, 5, 6, 7, 8]
    assert evidence.signals([0], candidates)[1:].tolist() == [[0.0] * 7] * 5
    np.testing.assert_allclose(
        evidence.bonus([0], candidates), [0.5 * direct([0], c) for c in candidates], rtol=1e-6
    )


def test_a_version_and_a_refresh_keep_the_outfits_and_the_weights(tmp_path):
    weights = [1.0, 0.5, 0.1, 0.3, -0.2, -0.7]
    evidence = CoOccurrence.from_outfits(OUTFITS, 0.0).weighted(*weights)
    evidence.save(tmp_path / "cooccurrence.npz")
    loaded = CoOccurrence.load(tmp_path / "cooccurrence.npz")
    assert (loaded.weight, loaded.second_order, loaded.overlap) == (1.0, 0.5, 0.1)  # exactly
    assert loaded.exposure == (0.3, -0.2, -0.7)
    assert loaded.weights.tolist() == weights  # as a training passes them on
    np.testing.assert_allclose(
        loaded.signals([0, 1], list(ITEMS)), evidence.signals([0, 1], list(ITEMS))
    )
    # A refresh removes item 3 and moves the rest: the same evidence as the moved outfits'.
    new_row = np.array([2, 0, 1, -1, 3, 4, 5, 6, 7])
    moved = [[int(new_row[r]) for r in outfit if new_row[r] >= 0] for outfit in OUTFITS]
    renumbered = evidence.renumbered(new_row)
    rebuilt = CoOccurrence.from_outfits(moved, 0.0).weighted(*weights)
    assert renumbered.weights.tolist() == weights
    for anchors in ([2, 0], [1, 3, 5]):
        np.testing.assert_allclose(
            renumbered.signals(anchors, list(range(8))), rebuilt.signals(anchors, list(range(8)))
        )
    # A version saved before exposure loads with it off; one before the outfit signals too.
    np.savez(
        tmp_path / "before_exposure.npz",
        pairs=np.array([[0, 1, 2], [1, 0, 2]]),
        weight=np.float64(0.5),
        second_order=np.float64(1.0),
        overlap=np.float64(0.3),
    )
    before = CoOccurrence.load(tmp_path / "before_exposure.npz")
    assert before.weights.tolist() == [0.5, 1.0, 0.3, 0.0, 0.0, 0.0]
    np.savez(tmp_path / "old.npz", pairs=np.array([[0, 1, 2], [1, 0, 2]]), weight=np.float32(0.5))
    old = CoOccurrence.load(tmp_path / "old.npz")
    assert old.weights.tolist() == [0.5, 0.0, 0.0, 0.0, 0.0, 0.0] and old.outfits == []
    assert old.bonus([0, 1], [1, 0]).tolist() == pytest.approx([0.5 * math.log1p(2) / 2] * 2)


def test_a_training_weighs_the_walk_when_held_out_outfits_are_answered_by_it():
    """Each held-out answer was never worn with the question's items but was worn with what
    they were worn with; the wrong answers were worn elsewhere. Content (random vectors)
    and direct co-occurrence are at chance; the chosen blend weighs the walk and answers all."""
    rng = np.random.default_rng(0)
    questions, train = 12, []
    tasks = []
    for k in range(questions):
        q1, q2, middle, answer, wrong, elsewhere = (6 * k + i for i in range(6))
        train += [[q1, middle], [q2, middle], [middle, answer], [wrong, elsewhere]]
        tasks.append(FitbTask((f"{q1}", f"{q2}"), (f"{wrong}", f"{answer}"), 1))
    skus = [f"{row}" for row in range(6 * questions)]
    row_of = {sku: row for row, sku in enumerate(skus)}
    categories = ["Tops"] * len(skus)
    vectors = rng.normal(size=(len(skus), 8)).astype(np.float32)
    vectors *= 0.05 / np.linalg.norm(vectors, axis=1, keepdims=True)  # weak, uninformative
    validation = Validation([], [], [], {}, set(), [], row_of, categories, blanks=tasks)
    content = SkuScorer(TypeAwareScorer(), vectors, categories, row_of)
    evidence = CoOccurrence.from_outfits(train, 0.0)
    chosen = validation.blend_weights(content, validation.blank_signals(evidence))
    assert chosen[1] > 0  # the walk weighs
    served = SkuScorer(
        TypeAwareScorer(None, evidence.weighted(*chosen)), vectors, categories, row_of
    )
    direct_only = SkuScorer(
        TypeAwareScorer(None, evidence.weighted(4.0)), vectors, categories, row_of
    )
    assert evaluate_tasks(served, tasks).fitb_accuracy == 1.0
    assert evaluate_tasks(direct_only, tasks).fitb_accuracy < 0.8


def exposure_questions(first: int, count: int) -> tuple[list[list[int]], list[FitbTask]]:
    """Questions whose answer is in no training outfit and whose wrong answers were worn, but
    never with the question's items (nor with what those were worn with): training outfits
    and questions on rows from `first` on."""
    train, tasks = [], []
    for k in range(count):
        q1, q2, partner, wrong1, wrong2, other, answer = (first + 7 * k + i for i in range(7))
        train += [[q1, partner], [q2, partner], [wrong1, other], [wrong2, other]]
        tasks.append(FitbTask((f"{q1}", f"{q2}"), (f"{wrong1}", f"{answer}", f"{wrong2}"), 1))
    return train, tasks


def test_a_training_learns_what_the_outfits_do_not_hold():
    """Stylists wore the wrong answers with other things and never the right one: direct,
    second-order and overlap say nothing of either (content is weak noise), so the old blend
    was at chance. The blend fitted on one set of held-out blanks weighs exposure and answers
    questions on other items."""
    fitted_on, fitting_tasks = exposure_questions(0, 12)
    scored_on, tasks = exposure_questions(84, 12)
    skus = [f"{row}" for row in range(168)]
    row_of = {sku: row for row, sku in enumerate(skus)}
    categories = ["Tops"] * len(skus)
    vectors = np.random.default_rng(1).normal(size=(len(skus), 8)).astype(np.float32)
    vectors *= 0.05 / np.linalg.norm(vectors, axis=1, keepdims=True)
    evidence = CoOccurrence.from_outfits(fitted_on + scored_on, 0.0)
    content = SkuScorer(TypeAwareScorer(), vectors, categories, row_of)
    features, _ = blend_features(content, blank_signals(evidence, row_of, tasks))
    assert not features[:, :, 1:4].any()  # direct, second order, overlap: silent
    validation = Validation([], [], [], {}, set(), [], row_of, categories, blanks=fitting_tasks)
    chosen = validation.blend_weights(content, validation.blank_signals(evidence))
    served = SkuScorer(
        TypeAwareScorer(None, evidence.weighted(*chosen)), vectors, categories, row_of
    )
    assert evaluate_tasks(served, tasks).fitb_accuracy == 1.0
    assert evaluate_tasks(content, tasks).fitb_accuracy < 0.7


def test_the_conditional_logit_recovers_the_weights_choices_were_drawn_with():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(6000, 4, 3)) * [1.0, 2.0, 0.5]
    truth = np.array([1.5, -0.7, 2.0])
    logits = features @ truth
    chance = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    right = np.array([rng.choice(4, p=p) for p in chance])
    np.testing.assert_allclose(conditional_logit(features, right), truth, rtol=0.08)


def test_the_blend_falls_back_where_its_fit_cannot_be_served():
    """No questions: content alone. A content score that predicts against the right answers:
    floored, so the outfits decide, never the reverse of content. A direct signal that
    predicts against them: 0, as a product page's row and a refresh read it as a raise."""
    assert fitted_blend(np.zeros((0, 0, 7)), np.zeros(0, dtype=np.int64)) == (0.0,) * 6
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 4, 7))
    logits = features @ np.array([-1.0, -2.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    chance = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    right = np.array([rng.choice(4, p=p) for p in chance])
    weights = fitted_blend(features, right)
    assert weights[0] == 0.0  # direct: never below 0
    assert weights[1] > 20  # the walk, at up to 100 times a content weight floored above 0


def test_every_item_of_every_outfit_is_blanked_once_among_wrong_answers_of_its_category():
    category_of = {f"t{n}": "Tops" for n in range(6)} | {f"s{n}": "Shoes" for n in range(5)}
    outfits = [["t0", "s0"], ["t1", "s1", "t2"], ["s2"]]
    tasks = every_blank(outfits, category_of, np.random.default_rng(0))
    assert sorted(t.answers[t.correct] for t in tasks) == ["s0", "s1", "t0", "t1", "t2"]
    for task in tasks:
        outfit = next(o for o in outfits if task.answers[task.correct] in o)
        blank = task.answers[task.correct]
        assert sorted([*task.question, blank]) == sorted(outfit)
        wrong = [a for a in task.answers if a != blank]
        assert len(wrong) == 3 and not set(wrong) & set(outfit)
        assert {category_of[a] for a in task.answers} == {category_of[blank]}


def test_weights_beyond_the_signals_are_refused():
    with pytest.raises(ValueError, match="6 weights at most"):
        CoOccurrence.from_outfits(OUTFITS, 0.0).weighted(*[1.0] * 7)
