"""Offline evaluation of a compatibility space, in the Polyvore Outfits formats: fill-in-the-
blank (FITB: an outfit with one item blanked, pick the right item among candidates of its
category), outfit compatibility AUC (real outfits against corrupted copies), and Recall@K of
the blanked item within its whole category. Item ids are catalog SKUs."""

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


def split_outfits(
    outfits: Sequence[Sequence[str]], validation_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) outfit indices. An outfit is held out by a hash of its items, not
    by its place or a seed: the next training holds out the same outfits and new ones in the
    same proportion, so the version it is compared with never trained on its questions.
    Validation keeps at least one outfit (the lowest hash) when there are two or more."""
    hashes = np.array([_outfit_hash(outfit) for outfit in outfits], dtype=np.float64)
    held_out = hashes < validation_fraction
    if len(outfits) > 1 and not held_out.any():
        held_out[int(np.argmin(hashes))] = True
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def _outfit_hash(items: Sequence[str]) -> float:
    """A number in [0, 1) fixed by the outfit's set of items."""
    digest = hashlib.sha256("\x1f".join(sorted(items)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- Task files in the Polyvore Outfits formats, with catalog SKUs as item ids ---


@dataclass(frozen=True)
class FitbTask:
    question: tuple[str, ...]
    answers: tuple[str, ...]
    correct: int
    category: str | None = None  # given: Recall@K of the answer within this whole category


@dataclass(frozen=True)
class CompatibilityTask:
    label: int  # 1: a real outfit, 0: a corrupted one
    items: tuple[str, ...]


def _right_answer(record: dict, number: int) -> int:
    """Which answer is right: an explicit `correct` index; else, for Polyvore ids
    (`<set>_<index>`), the answer from the question's set; else the first answer."""
    answers = record["answers"]
    if "correct" in record:
        index = int(record["correct"])
        if not 0 <= index < len(answers):
            raise ValueError(f"question {number}: correct={index} is not an answer index")
        return index
    sets = {str(item).split("_")[0] for item in record["question"]}
    if len(sets) == 1 and all("_" in str(a) for a in answers):
        matches = [i for i, a in enumerate(answers) if str(a).split("_")[0] in sets]
        if len(matches) == 1:
            return matches[0]
    return 0


def read_fitb_tasks(path) -> list[FitbTask]:
    """A fill_in_blank JSON list of {question: [ids], answers: [ids], blank_position[,
    correct][, category]}."""
    import json

    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of questions")
    tasks = []
    for number, record in enumerate(records, start=1):
        if not record.get("question") or len(record.get("answers", [])) < 2:
            raise ValueError(f"{path}: question {number} needs question items and 2+ answers")
        tasks.append(
            FitbTask(
                tuple(map(str, record["question"])),
                tuple(map(str, record["answers"])),
                _right_answer(record, number),
                record.get("category"),
            )
        )
    return tasks


def read_compatibility_tasks(path) -> list[CompatibilityTask]:
    """Lines of `label item item …` (label 1 for a real outfit, 0 for a corrupted one)."""
    tasks = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] not in {"0", "1"} or len(fields) < 3:
            raise ValueError(f"{path}:{number}: expected `label item item …` with label 0 or 1")
        tasks.append(CompatibilityTask(int(fields[0]), tuple(fields[1:])))
    return tasks


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count half). NaN without both classes."""
    labels_array = np.asarray(labels)
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    positives = int(labels_array.sum())
    negatives = len(labels_array) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = ranks[labels_array == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


class Scorer(Protocol):
    """Scores items by id: how well each candidate goes with the question's items."""

    def __contains__(self, item: object) -> bool: ...

    def __call__(self, question: Sequence[str], candidates: Sequence[str]) -> np.ndarray: ...


PairBonus = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass
class CosineScorer:
    """Mean cosine of each candidate to the question's items (unit vectors by id), plus
    `bonus(question, candidates)` (e.g. curated co-occurrence) when given."""

    vectors_of: dict[str, np.ndarray]
    bonus: PairBonus | None = None

    def __contains__(self, item: object) -> bool:
        return item in self.vectors_of

    def __call__(self, question: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        cosines = (
            np.stack([self.vectors_of[c] for c in candidates])
            @ np.stack([self.vectors_of[q] for q in question]).T
        ).mean(axis=1)
        return cosines + self.bonus(question, candidates) if self.bonus else cosines


def outfit_score(score: Scorer, items: Sequence[str]) -> float:
    """Mean pairwise compatibility of an outfit's items."""
    return float(np.mean([score([o for o in items if o != item], [item])[0] for item in items]))


def figure_text(value: float | None) -> str:
    """A figure as commands and logs print it: three decimals, or — when not measured."""
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def proportion_standard_error(proportion: float, count: int) -> float:
    """The standard error of a proportion measured on `count` questions (FITB, Recall@K)."""
    if not count or np.isnan(proportion):
        return float("nan")
    return float(np.sqrt(proportion * (1 - proportion) / count))


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an AUC (Hanley & McNeil, 1982)."""
    if not positives or not negatives or np.isnan(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return float(np.sqrt(max(variance, 0.0)))


@dataclass
class TaskResults:
    fitb_accuracy: float = float("nan")
    fitb_questions: int = 0
    fitb_standard_error: float = float("nan")
    compatibility_auc: float = float("nan")
    compatibility_outfits: int = 0
    compatibility_auc_standard_error: float = float("nan")
    recall_at: dict[int, float] | None = None
    recall_questions: int = 0
    skipped_unknown_items: int = 0


def evaluate_tasks(
    score: Scorer | dict[str, np.ndarray],
    fitb: Sequence[FitbTask] = (),
    compatibility: Sequence[CompatibilityTask] = (),
    category_members: Mapping[str, Sequence[str]] | None = None,
    ks: Sequence[int] = (10, 30, 50),  # as the complementary-item retrieval papers report
) -> TaskResults:
    """Score tasks: FITB picks the answer `score` ranks first; Recall@K ranks the right answer
    among all members of the question's category; AUC compares outfit scores (mean pairwise
    compatibility) of real and corrupted outfits. A dict of unit vectors by id means plain
    cosine. Tasks naming an item the scorer does not know are skipped and counted."""
    if isinstance(score, dict):
        score = CosineScorer(score)
    results = TaskResults()
    hits, skipped = [], 0
    recall_hits: dict[int, list[bool]] = {k: [] for k in ks}
    for task in fitb:
        if any(item not in score for item in [*task.question, *task.answers]):
            skipped += 1
            continue
        scores = score(task.question, task.answers)
        hits.append(int(np.argmax(scores)) == task.correct)
        members = (category_members or {}).get(task.category or "")
        if members:
            pool = [sku for sku in members if sku not in task.question]
            rank = int((score(task.question, pool) > scores[task.correct]).sum())  # 0: first
            for k in ks:
                recall_hits[k].append(rank < k)
    if hits:
        results.fitb_accuracy, results.fitb_questions = float(np.mean(hits)), len(hits)
        results.fitb_standard_error = proportion_standard_error(results.fitb_accuracy, len(hits))
    if any(recall_hits.values()):
        results.recall_at = {k: float(np.mean(v)) for k, v in recall_hits.items()}
        results.recall_questions = len(recall_hits[ks[0]])
    labels, outfit_scores = [], []
    for outfit in compatibility:
        if any(item not in score for item in outfit.items):
            skipped += 1
            continue
        labels.append(outfit.label)
        outfit_scores.append(outfit_score(score, outfit.items))
    if labels:
        results.compatibility_auc = roc_auc(labels, outfit_scores)
        results.compatibility_outfits = len(labels)
        positives = int(np.sum(labels))
        results.compatibility_auc_standard_error = auc_standard_error(
            results.compatibility_auc, positives, len(labels) - positives
        )
    results.skipped_unknown_items = skipped
    return results


def _asked(
    outfit: Sequence[str],
    blank: str,
    pool: Sequence[str],
    category: str,
    rng: np.random.Generator,
    answer_count: int,
) -> FitbTask | None:
    """`outfit` with `blank` to fill among wrong answers drawn from `pool` (its category's
    items) outside the outfit, the blank at a random place; None if the pool is too small."""
    candidates = [sku for sku in pool if sku not in outfit]
    if len(candidates) < answer_count - 1:
        return None
    picks = rng.choice(len(candidates), size=answer_count - 1, replace=False)
    wrong = [candidates[i] for i in picks]
    correct = int(rng.integers(answer_count))
    answers = (*wrong[:correct], blank, *wrong[correct:])
    return FitbTask(tuple(sku for sku in outfit if sku != blank), answers, correct, category)


def _by_category(skus: Sequence[str], category_of: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for sku in skus:
        found.setdefault(category_of[sku], []).append(sku)
    return found


def every_blank(
    outfits: Sequence[Sequence[str]],
    category_of: dict[str, str],
    rng: np.random.Generator,
    answer_count: int = 4,
) -> list[FitbTask]:
    """FITB with each item of each outfit as the blank once, wrong answers of its category
    drawn from every item outside the outfit (make_tasks asks one blank per outfit)."""
    by_category = _by_category(list(category_of), category_of)
    asked = (
        _asked(
            outfit, blank, by_category[category_of[blank]], category_of[blank], rng, answer_count
        )
        for outfit in outfits
        if len(outfit) >= 2
        for blank in outfit
    )
    return [task for task in asked if task is not None]


def make_tasks(
    outfits: Sequence[Sequence[str]],
    category_of: dict[str, str],
    rng: np.random.Generator,
    answer_pool: Sequence[str] | None = None,
    answer_count: int = 4,
) -> tuple[list[FitbTask], list[CompatibilityTask]]:
    """Tasks from held-out outfits. FITB: one random item blanked (or, with `answer_pool`, one
    of the pool's items, e.g. a new arrival), wrong answers of its category drawn from the pool
    (default: every item), outside the outfit. Compatibility: each outfit (label 1) and a copy
    with every item swapped for a random item of its category (label 0)."""
    pool = list(answer_pool) if answer_pool is not None else list(category_of)
    pool_by_category = _by_category(pool, category_of)
    everything_by_category = _by_category(list(category_of), category_of)
    in_pool = set(pool)
    fitb, compatibility = [], []
    for outfit in outfits:
        if len(outfit) < 2:
            continue
        blanks = [sku for sku in outfit if sku in in_pool]
        if blanks:
            blank = blanks[int(rng.integers(len(blanks)))]
            category = category_of[blank]
            task = _asked(outfit, blank, pool_by_category[category], category, rng, answer_count)
            if task is not None:
                fitb.append(task)
        swapped = []
        for sku in outfit:
            others = [s for s in everything_by_category[category_of[sku]] if s != sku]
            swapped.append(others[int(rng.integers(len(others)))] if others else sku)
        compatibility += [CompatibilityTask(1, tuple(outfit)), CompatibilityTask(0, tuple(swapped))]
    return fitb, compatibility
