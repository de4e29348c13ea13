"""What a learned blend of the outfits' signals gives on warm questions, against the grid of
weights trainings chose from before 2026-12-07 (blend_choice.py's BLEND_GRID): the probe behind
embeddings/engine/blend.py. The conditional logit (a softmax over each question's four answers,
as discrete-choice models and listwise learning to rank fit it) weighs the content score and
the outfit signals: the three the grid weighed (direct, second order, overlap), then exposure
besides (how much a candidate is worn; whether it is in no outfit, no evidence either way;
whether it is worn but never with these items, evidence against), then two interactions.

Three estimates on the active version and the Mango split:
- fitted on one half of the split's warm questions, scored on the other (10 halvings both
  ways, as `score_signals.py`): what the features can give, chosen near the split;
- fitted on the training's own held-out blanks (every item of each held-out outfit as the
  blank, 3 draws of wrong answers; the outfits' evidence and the content score as the training
  had them, `blend_choice.py`'s), scored on the split: what a training could serve;
- the grid's choice on the same blanks, for comparison.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/warm_ranker.py \\
        --split /tmp/mango-split --seed 0 --results /tmp/warm_ranker.json
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
    BLEND_GRID,
    best_blend,
    blend_grid_right,
    probe_parser,
    trained_options,
    training_content,
    training_validation,
)
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from benchmarks.score_signals import halving_estimate  # noqa: E402
from embeddings.engine.blend import (  # noqa: E402
    blank_signals,
    blend_features,
    conditional_logit,
    fitted_blend,
)
from embeddings.engine.cooccurrence import SIGNALS, CoOccurrence  # noqa: E402
from embeddings.engine.evaluate import FitbTask  # noqa: E402
from embeddings.engine.scorers import OutfitScorer, SkuScorer  # noqa: E402

FEATURES = (
    "content",
    *SIGNALS,  # direct, second order, overlap; worn, unworn, unpaired (worn, never with these)
    "content_if_unworn",
    "worn_if_unpaired",  # log(1 + its partners) where no question item was worn with it
)
FEATURE_SETS = {
    "content + the three signals": FEATURES[:4],
    "+ exposure (the learned blend, blend.py)": FEATURES[:7],
    "+ exposure and interactions": FEATURES,
}
CV_REPEATS = 10


def table(
    content: SkuScorer, evidence: CoOccurrence, row_of: dict[str, int], tasks: Sequence[FitbTask]
) -> tuple[np.ndarray, np.ndarray]:
    """(questions, 4, FEATURES) and the right answers: the blend's features (blend.py) and
    two interactions."""
    x, right = blend_features(content, blank_signals(evidence, row_of, tasks))
    assert len(right) == len(tasks), "every item of these questions is in the version"
    interactions = np.stack([x[:, :, 0] * x[:, :, 5], x[:, :, 4] * x[:, :, 6]], axis=2)
    return np.concatenate([x, interactions], axis=2), right


def accuracy(x: np.ndarray, right: np.ndarray, w: np.ndarray) -> float:
    return float((np.argmax(x @ w, axis=1) == right).mean())


def halving(
    x: np.ndarray, right: np.ndarray, columns: Sequence[int], repeats: int = CV_REPEATS
) -> float:
    """Fitted on one half, scored on the other, both ways, `repeats` times."""
    rng = np.random.default_rng(0)
    found = []
    sub = x[:, :, list(columns)]
    for _ in range(repeats):
        order = rng.permutation(len(sub))
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        for fit_on, score_on in (halves, halves[::-1]):
            w = conditional_logit(sub[fit_on], right[fit_on])
            found.append(accuracy(sub[score_on], right[score_on], w))
    return float(np.mean(found))


def grid_right(x: np.ndarray, right: np.ndarray) -> np.ndarray:
    """right[q, g] for content + BLEND_GRID[g] · the three signals (fit.blend_grid_right's)."""
    scores = x[:, :, 0][:, None, :] + np.einsum("gs,qas->qga", BLEND_GRID, x[:, :, 1:4])
    return np.argmax(scores, axis=2) == right[:, None]


def main() -> None:
    arguments = probe_parser(__doc__).parse_args()
    version, index = active_version()
    options = trained_options(version, arguments)
    row_of = dict(index.row_of_sku)
    outfits = read_training_outfits(arguments.split)
    train_rows, validation = training_validation(index, outfits, options)

    warm_tasks = [
        FitbTask(tuple(t["question"]), tuple(t["answers"]), t["correct"], t["category"])
        for t in json.loads((arguments.split / "warm_fitb.json").read_text())
    ]
    every = CoOccurrence.from_outfits([[row_of[s] for s in o] for o in outfits], 0.0)
    warm_x, warm_right = table(
        index.sku_scorer(index.scorer.content_only()), every, row_of, warm_tasks
    )
    training = training_content(index, train_rows, options.hub_penalty)
    train_evidence = CoOccurrence.from_outfits(train_rows, 0.0)
    held_x, held_right = table(training, train_evidence, row_of, validation.blanks)
    served = index.sku_scorer(index.scorer)
    served_right = [np.argmax(served(t.question, t.answers)) == t.correct for t in warm_tasks]
    by_category: dict[str, list[bool]] = {}
    for task, right in zip(warm_tasks, served_right, strict=True):
        by_category.setdefault(task.category, []).append(bool(right))
    results: dict = {
        "machine": machine(),
        "code": code_version(),
        "version": version.name,
        "warm_questions": len(warm_right),
        "held_out_blanks": len(held_right),
        "served": float(np.mean(served_right)),
        "served_by_category": {
            category: {"questions": len(found), "lost": found.count(False)}
            for category, found in sorted(by_category.items(), key=lambda kv: -len(kv[1]))
        },
        "content_alone": float((np.argmax(warm_x[:, :, 0], axis=1) == warm_right).mean()),
    }
    warm_grid = grid_right(warm_x, warm_right)
    chosen = best_blend(grid_right(held_x, held_right))
    # The training's own choice, rebuilt: the same only if the split is the version's (a
    # version trained before the learned blend chose from the grid on one blank per outfit).
    grid_row = best_blend(blend_grid_right(training, train_evidence, row_of, validation.fitb))
    grid_choice = BLEND_GRID[grid_row].tolist()
    learned = list(fitted_blend(held_x[:, :, : 1 + len(SIGNALS)], held_right))
    served_scorer = index.scorer
    base = served_scorer.base if isinstance(served_scorer, OutfitScorer) else served_scorer
    versions = np.asarray(base.cooccurrence.weights)
    results["rebuilt"] = {
        "the_versions_weights": versions.tolist(),
        "grid_choice_is_the_versions": grid_choice + [0.0] * 3 == versions.tolist(),
        "learned_blend_is_the_versions": bool(np.allclose(learned, versions, rtol=1e-6)),
    }
    results["grid"] = {
        "the_trainings_choice": grid_choice,  # on one blank per held-out outfit
        "the_trainings_choice_split_warm": float(warm_grid[:, grid_row].mean()),
        "split_halves": halving_estimate(warm_grid),
        "chosen_on_held_out_blanks": BLEND_GRID[chosen].tolist(),
        "split_warm": float(warm_grid[:, chosen].mean()),
        "best_on_split_warm": float(warm_grid.mean(axis=0).max()),
    }
    rows = []
    for name, names in FEATURE_SETS.items():
        columns = [FEATURES.index(n) for n in names]
        on_held = conditional_logit(held_x[:, :, columns], held_right)
        on_warm = conditional_logit(warm_x[:, :, columns], warm_right)
        rows.append(
            {
                "features": name,
                "split_halves": halving(warm_x, warm_right, columns),
                "fitted_on_held_out_blanks": accuracy(warm_x[:, :, columns], warm_right, on_held),
                "held_out_blanks_in_sample": accuracy(held_x[:, :, columns], held_right, on_held),
                "fitted_on_split_warm_in_sample": accuracy(
                    warm_x[:, :, columns], warm_right, on_warm
                ),
                "weights_from_held_out_blanks": dict(
                    zip(names, np.round(on_held, 4).tolist(), strict=True)
                ),
            }
        )
    results["ranker"] = rows
    print(
        f"version {version.name}: warm served {results['served']:.3f}, content alone "
        f"{results['content_alone']:.3f}; the grid as a training chose it "
        f"{results['grid']['the_trainings_choice']} -> "
        f"{results['grid']['the_trainings_choice_split_warm']:.3f}, chosen on "
        f"{len(held_right)} held-out blanks "
        f"{results['grid']['chosen_on_held_out_blanks']} -> {results['grid']['split_warm']:.3f}"
        f" (best on the split {results['grid']['best_on_split_warm']:.3f}, halves "
        f"{results['grid']['split_halves']:.3f}); the version's weights rebuilt: "
        f"{json.dumps(results['rebuilt'])}"
    )
    for row in rows:
        print(
            f"  {row['features']:42} halves {row['split_halves']:.3f}  from held-out blanks "
            f"{row['fitted_on_held_out_blanks']:.3f}  "
            f"in-sample {row['fitted_on_split_warm_in_sample']:.3f}"
        )
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
