"""Evaluation metrics against small cases computed by hand, and the Polyvore task formats."""

import json
import math

import numpy as np
import pytest

from embeddings.engine.evaluate import (
    CompatibilityTask,
    CosineScorer,
    FitbTask,
    evaluate_tasks,
    outfit_score,
    read_compatibility_tasks,
    read_fitb_tasks,
    roc_auc,
)

R = {  # 2-d unit vectors: cosine similarity is easy to do by hand
    "A": np.array([1.0, 0.0]),
    "B": np.array([1.0, 0.0]),
    "C": np.array([0.0, 1.0]),
    "D": np.array([-1.0, 0.0]),
    "E": np.array([0.6, 0.8]),
    "F": np.array([0.8, 0.6]),
}


def test_roc_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.1, 0.5: 3 of the 4 pairs ordered right
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.5]) == 0.75
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5  # a tie counts half
    assert roc_auc([1, 1, 0], [3, 2, 1]) == 1.0
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_outfit_score_is_the_mean_pairwise_cosine():
    # pairs: A·B = 1, A·C = 0, B·C = 0 → 1/3
    assert outfit_score(CosineScorer(R), ["A", "B", "C"]) == pytest.approx(1 / 3)


def test_fitb_accuracy_and_recall_by_hand():
    tasks = [
        FitbTask(("A",), ("B", "C", "D"), correct=0),  # B scores 1: right
        FitbTask(("A",), ("B", "E", "D"), correct=1),  # B (1) beats E (0.6): wrong
        FitbTask(("A", "C"), ("E", "F", "D"), correct=0, category="tops"),
    ]
    # third question: E scores (0.6+0.8)/2 = 0.7, F (0.8+0.6)/2 = 0.7 (tie → first, E): right.
    # Recall within "tops" = {B, E, F, D}: scores B 0.5, E 0.7, F 0.7, D -0.5: none above E,
    # so E ranks first: a hit at K=1 and K=2.
    results = evaluate_tasks(
        R, fitb=tasks, category_members={"tops": ["B", "E", "F", "D"]}, ks=(1, 2)
    )
    assert results.fitb_accuracy == pytest.approx(2 / 3) and results.fitb_questions == 3
    assert results.recall_at == {1: 1.0, 2: 1.0} and results.recall_questions == 1


def test_recall_counts_the_items_ranked_above_the_answer():
    tasks = [FitbTask(("A",), ("E", "D"), correct=0, category="c")]
    # pool scores: B 1.0, F 0.8, E 0.6, D -1: E is third
    results = evaluate_tasks(R, fitb=tasks, category_members={"c": ["B", "F", "E", "D"]}, ks=(2, 3))
    assert results.recall_at == {2: 0.0, 3: 1.0}


def test_compatibility_auc_and_unknown_items():
    tasks = [
        CompatibilityTask(1, ("A", "B")),
        CompatibilityTask(0, ("A", "D")),
        CompatibilityTask(1, ("E", "F")),
        CompatibilityTask(0, ("A", "ZZZ")),
    ]
    results = evaluate_tasks(R, compatibility=tasks)
    assert results.compatibility_auc == 1.0 and results.compatibility_outfits == 3
    assert results.skipped_unknown_items == 1


def test_task_files_in_polyvore_formats(tmp_path):
    fitb = tmp_path / "fitb.json"
    fitb.write_text(
        json.dumps(
            [
                {"question": ["S1", "S2"], "answers": ["S3", "S4"], "blank_position": 3},
                {
                    "question": ["S1"],
                    "answers": ["S3", "S4"],
                    "blank_position": 2,
                    "correct": 1,
                    "category": "Shoes",
                },
                {
                    "question": ["111_1", "111_2"],
                    "answers": ["222_3", "111_3"],
                    "blank_position": 3,
                },
            ]
        )
    )
    tasks = read_fitb_tasks(fitb)
    assert [t.correct for t in tasks] == [0, 1, 1]
    assert tasks[1].category == "Shoes" and tasks[0].category is None
    compat = tmp_path / "compat.txt"
    compat.write_text("1 S1 S2 S3\n0 S1 S4\n\n")
    assert read_compatibility_tasks(compat) == [
        CompatibilityTask(1, ("S1", "S2", "S3")),
        CompatibilityTask(0, ("S1", "S4")),
    ]
    compat.write_text("yes S1 S2\n")
    with pytest.raises(ValueError, match="compat.txt:1"):
        read_compatibility_tasks(compat)
    fitb.write_text(json.dumps([{"question": ["S1"], "answers": ["S2"]}]))
    with pytest.raises(ValueError, match="2\\+ answers"):
        read_fitb_tasks(fitb)


def test_standard_errors_are_those_of_a_proportion_and_of_hanley_and_mcneil():
    from embeddings.engine.evaluate import auc_standard_error, proportion_standard_error

    assert proportion_standard_error(0.55, 956) == pytest.approx(0.0161, abs=1e-4)
    assert proportion_standard_error(0.85, 335) == pytest.approx(0.0195, abs=1e-4)
    # Hanley & McNeil's table: AUC 0.8 on 50 positives and 50 negatives gives about 0.044.
    assert auc_standard_error(0.8, 50, 50) == pytest.approx(0.0442, abs=5e-4)
    assert auc_standard_error(0.99, 970, 970) < auc_standard_error(0.9, 970, 970)
