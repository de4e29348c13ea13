"""Is the learned blend (embeddings/engine/blend.py) short of features? Each candidate feature
is added to the content score and the six outfit signals, the conditional logit is fitted on
the training's own held-out blanks (every item of each held-out outfit as the blank, 3 draws:
about 9,700 questions on Mango), and scored three ways:

- on the blanks themselves, fitted on one half and scored on the other (5 halvings both ways):
  the large-sample estimate of what the feature adds (± about 0.5 points);
- on the split's warm questions, fitted on all the blanks: what a training would serve;
- on the split's warm questions in sample: what the feature could give at best.

The candidates, each computed as a training would have it (the training's outfits for the
blanks, every split training outfit for the split's questions):
- the best and the worst of the answer's pair scores with the question items (content is their
  mean): one strong partner, or one clash;
- the outfit model's correction apart from the pairs' mean (a version served by it);
- item vectors of the outfits alone (PPMI of co-occurrence, truncated SVD to 64 dimensions:
  item2vec's closed form): the answer against the question items' mean, and their best;
- a content weight per answer family, and one per question item's family (a clash with a
  bag may matter less than one with trousers);
- look-alikes of the stylists' pairs: how close the answer is, in the compatibility space, to
  the items of its family worn with each question item (the best and the mean, itself left
  out): instance-based memory, which reaches answers in no outfit.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/blend_features.py \\
        --split /tmp/mango-split --seed 0 --results /tmp/blend_features.json
"""

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.blend_choice import (  # noqa: E402
    probe_parser,
    trained_options,
    training_content,
    training_validation,
)
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from benchmarks.warm_ranker import accuracy, halving  # noqa: E402
from embeddings.engine.blend import blank_signals, conditional_logit  # noqa: E402
from embeddings.engine.cooccurrence import SIGNALS, CoOccurrence  # noqa: E402
from embeddings.engine.evaluate import FitbTask, read_fitb_tasks  # noqa: E402
from embeddings.engine.scorers import OutfitScorer, SkuScorer  # noqa: E402

SHARED = ("content", *SIGNALS)  # the learned blend's features
EXTRA = (
    "best pair",
    "worst pair",
    "correction",
    "item vectors",
    "item vectors, best",
    "look-alike, best",
    "look-alike, mean",
)
CF_DIMENSIONS = 64
HALVINGS = 5


def item_vectors(evidence: CoOccurrence, items: int) -> np.ndarray:
    """Unit vectors of the outfits alone: PPMI of the items' co-occurrence (`evidence`'s
    partner counts), randomized SVD (dense over the worn items; items in no outfit get 0)."""
    worn = sorted(evidence.partners)
    at = {row: i for i, row in enumerate(worn)}
    counts = np.zeros((len(worn), len(worn)))
    for row, seen in evidence.partners.items():
        for other, together in seen.items():
            counts[at[row], at[other]] = together
    sums = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * counts.sum() / np.outer(sums, sums))
    ppmi = np.where((counts > 0) & (pmi > 0), pmi, 0.0)
    rng = np.random.default_rng(0)
    sketch = ppmi @ rng.standard_normal((len(worn), CF_DIMENSIONS + 16))
    for _ in range(3):
        sketch = ppmi @ (ppmi.T @ sketch)
    basis, _ = np.linalg.qr(sketch)
    u, s, _ = np.linalg.svd(basis.T @ ppmi, full_matrices=False)
    found = np.zeros((items, CF_DIMENSIONS))
    found[worn] = (basis @ u)[:, :CF_DIMENSIONS] * np.sqrt(s[:CF_DIMENSIONS])
    norm = np.linalg.norm(found, axis=1, keepdims=True)
    return found / np.maximum(norm, 1e-12)


def table(
    content: SkuScorer,
    evidence: CoOccurrence,
    row_of: dict[str, int],
    tasks: Sequence[FitbTask],
    outfit_vectors: np.ndarray,
    families: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """(questions, answers, SHARED + EXTRA + a content column per answer family + one per
    question item's family) and the right answers."""
    signals = blank_signals(evidence, row_of, tasks)
    served = content.scorer
    pairs = served.base if isinstance(served, OutfitScorer) else served
    vectors, categories = np.asarray(content.vectors, np.float32), content.categories
    found = []
    for task, task_signals in zip(signals.tasks, signals.signals, strict=True):
        question = [row_of[s] for s in task.question]
        answers = [row_of[s] for s in task.answers]
        family = categories[answers[0]]
        by_pair = np.stack(
            [vectors[answers] @ pairs.query(vectors[q], categories[q], family) for q in question]
        )
        score = np.asarray(content(task.question, task.answers), np.float64)
        per_answer_family = np.zeros((len(answers), len(families)))
        per_answer_family[:, families.index(family)] = score
        per_question_family = np.zeros((len(answers), len(families)))
        for q, scores in zip(question, by_pair, strict=True):
            per_question_family[:, families.index(categories[q])] += scores / len(question)
        alike = np.zeros((2, len(answers)))
        for q in question:
            worn_with = [p for p in evidence.partners.get(q, {}) if categories[p] == family]
            for at, answer in enumerate(answers):
                others = [p for p in worn_with if p != answer]
                if others:
                    closeness = vectors[others] @ vectors[answer]
                    alike[:, at] += np.array([closeness.max(), closeness.mean()]) / len(question)
        found.append(
            np.column_stack(
                [
                    score,
                    task_signals,
                    by_pair.max(axis=0),
                    by_pair.min(axis=0),
                    score - by_pair.mean(axis=0),
                    outfit_vectors[answers] @ outfit_vectors[question].mean(axis=0),
                    (outfit_vectors[answers] @ outfit_vectors[question].T).max(axis=1),
                    alike.T,
                    per_answer_family,
                    per_question_family,
                ]
            )
        )
    return np.stack(found), np.array([task.correct for task in signals.tasks])


def main() -> None:
    arguments = probe_parser(__doc__).parse_args()
    version, index = active_version()
    options = trained_options(version, arguments)
    row_of = dict(index.row_of_sku)
    families = sorted(set(index.categories))
    outfits = read_training_outfits(arguments.split)
    train_rows, validation = training_validation(index, outfits, options)
    every_row = [[row_of[s] for s in outfit] for outfit in outfits]
    train_evidence = CoOccurrence.from_outfits(train_rows, 0.0)
    held_x, held_right = table(
        training_content(index, train_rows, options.hub_penalty),
        train_evidence,
        row_of,
        validation.blanks,
        item_vectors(train_evidence, len(index.skus)),
        families,
    )
    served_content = index.sku_scorer(index.scorer.content_only())
    every_outfit = CoOccurrence.from_outfits(every_row, 0.0)
    every_vectors = item_vectors(every_outfit, len(index.skus))
    split: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in ("warm", "cold"):
        tasks = read_fitb_tasks(arguments.split / f"{name}_fitb.json")
        split[name] = table(served_content, every_outfit, row_of, tasks, every_vectors, families)
    shared = list(range(len(SHARED)))
    first_family = len(SHARED) + len(EXTRA)
    sets = {
        "the learned blend": shared,
        **{f"+ {name}": shared + [len(SHARED) + i] for i, name in enumerate(EXTRA)},
        "+ best and worst pair": shared + [len(SHARED), len(SHARED) + 1],
        "+ both look-alikes": shared + [len(SHARED) + 5, len(SHARED) + 6],
        "+ a content weight per answer family": shared
        + list(range(first_family, first_family + len(families))),
        "+ a content weight per question item's family": shared
        + list(range(first_family + len(families), first_family + 2 * len(families))),
        "+ all": list(range(held_x.shape[2])),
    }
    if not isinstance(index.scorer, OutfitScorer):
        del sets["+ correction"]  # 0 everywhere: a version served by the pairs
    warm_x, warm_right = split["warm"]
    cold_x, cold_right = split["cold"]
    rows = []
    for name, columns in sets.items():
        on_blanks = conditional_logit(held_x[:, :, columns], held_right)
        on_warm = conditional_logit(warm_x[:, :, columns], warm_right)
        rows.append(
            {
                "features": name,
                "blanks_halves": halving(held_x, held_right, columns, HALVINGS),
                "warm_fitted_on_blanks": accuracy(warm_x[:, :, columns], warm_right, on_blanks),
                "warm_in_sample": accuracy(warm_x[:, :, columns], warm_right, on_warm),
                "cold_fitted_on_blanks": accuracy(cold_x[:, :, columns], cold_right, on_blanks),
            }
        )
        row = rows[-1]
        print(
            f"{name:48} blanks (halves) {row['blanks_halves']:.3f}  warm "
            f"{row['warm_fitted_on_blanks']:.3f} "
            f"({round(row['warm_fitted_on_blanks'] * len(warm_right))}/{len(warm_right)}), "
            f"in sample {row['warm_in_sample']:.3f}  cold {row['cold_fitted_on_blanks']:.3f}"
        )
    results = {
        "machine": machine(),
        "code": code_version(),
        "version": version.name,
        "scorer": index.scorer.kind,
        "held_out_blanks": len(held_right),
        "warm_questions": len(warm_right),
        "cold_questions": len(cold_right),
        "rows": rows,
    }
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
