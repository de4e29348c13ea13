"""Offline evaluation of a compatibility space on held-out outfits: fill-in-the-blank (FITB)
as in the Polyvore Outfits benchmark: given an outfit with one item blanked, pick the right item
among candidates of the same category."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .triplets import items_by_category


@dataclass(frozen=True)
class FitbQuestion:
    question: tuple[int, ...]  # the outfit's remaining items
    answers: tuple[int, ...]  # candidates, all of the blank's category
    correct: int  # index of the right answer in `answers`


def split_outfits(
    outfit_count: int, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) outfit indices; validation keeps at least one outfit."""
    order = rng.permutation(outfit_count)
    validation_count = max(1, round(outfit_count * validation_fraction)) if outfit_count > 1 else 0
    return np.sort(order[validation_count:]), np.sort(order[:validation_count])


def make_fitb_questions(
    outfits: Sequence[Sequence[int]],
    item_categories: np.ndarray,
    rng: np.random.Generator,
    answer_count: int = 4,
) -> list[FitbQuestion]:
    """One question per outfit of 2+ items: a random item blanked, wrong answers drawn from its
    category outside the outfit. Outfits whose blank has too few same-category items are skipped."""
    pools = items_by_category(item_categories)
    questions = []
    for outfit in outfits:
        if len(outfit) < 2:
            continue
        blank = int(rng.choice(outfit))
        pool = np.setdiff1d(pools[int(item_categories[blank])], outfit)
        if len(pool) < answer_count - 1:
            continue
        wrong = rng.choice(pool, size=answer_count - 1, replace=False).tolist()
        correct = int(rng.integers(answer_count))
        answers = wrong[:correct] + [blank] + wrong[correct:]
        question = tuple(int(item) for item in outfit if item != blank)
        questions.append(FitbQuestion(question, tuple(int(a) for a in answers), correct))
    return questions


def answer_scores(embeddings: np.ndarray, question: Sequence[int], answers: Sequence[int]):
    """Each answer's mean cosine similarity to the question's items (rows are unit vectors)."""
    return (embeddings[list(answers)] @ embeddings[list(question)].T).mean(axis=1)


def fitb_accuracy(embeddings: np.ndarray, questions: Sequence[FitbQuestion]) -> float:
    """Fraction of questions whose best-scoring answer is the right one (NaN with no questions)."""
    if not questions:
        return float("nan")
    hits = [
        int(np.argmax(answer_scores(embeddings, q.question, q.answers))) == q.correct
        for q in questions
    ]
    return float(np.mean(hits))
