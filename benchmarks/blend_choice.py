"""How well a training chooses the weights of the outfits' signals, and what a steadier choice
would give, on the active version and the Mango split.

Until 2026-12-07 a training picked the weights of the first three of cooccurrence.SIGNALS
(direct, second order, overlap) from BLEND_GRID's 120 (below), those that answer most of its
held-out blanks (blend_grid_right, best_blend): one blank per held-out outfit, about 580
questions; since, it learns all six (embeddings/engine/blend.py; warm_ranker.py compares the
two). The probe rebuilds the grid's choice from the version's own content scorer and the
training's split (the outfits held out by hash, the questions drawn with the training's seed,
the hub penalty's centres of the training's own outfits), reports whether it gives the weights
the version has, then chooses again on more questions (every item of a held-out outfit as a
blank, in several draws of wrong answers; those whose answer training wore) and scores each
choice on the split's warm questions; the best weights on the split itself are the bound.
(Cold answers have no outfit evidence: every choice scores them alike.)

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/blend_choice.py \\
        --split /tmp/mango-split --seed 0 --results /tmp/blend_choice.json
"""

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402
from embeddings.engine.evaluate import (  # noqa: E402
    FitbTask,
    every_blank,
    make_tasks,
    split_outfits,
)
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, Validation  # noqa: E402
from embeddings.engine.index import CompatibilityIndex  # noqa: E402
from embeddings.engine.scorers import (  # noqa: E402
    OutfitScorer,
    SkuScorer,
    TypeAwareScorer,
    query_centres,
)

COOCCURRENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
SECOND_ORDER_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
OVERLAP_WEIGHTS = (0.0, 0.1, 0.3, 1.0)

# The weights of the first three of the outfits' signals (cooccurrence.SIGNALS: direct, second
# order, overlap) a training tried before the learned blend (embeddings/engine/blend.py), every
# one with every other.
BLEND_GRID = np.array(
    [(a, b, c) for a in COOCCURRENCE_WEIGHTS for b in SECOND_ORDER_WEIGHTS for c in OVERLAP_WEIGHTS]
)


def blend_grid_right(
    content: SkuScorer,
    evidence: CoOccurrence,
    row_of: Mapping[str, int],
    tasks: Sequence[FitbTask],
) -> np.ndarray:
    """right[q, g]: FITB question q answered right by `content`'s score plus the signals at
    BLEND_GRID[g] (questions with an item `content` does not know are left out): the content
    score computed once, the grid's scores by one product."""
    found = []
    for task in tasks:
        if any(item not in content for item in [*task.question, *task.answers]):
            continue
        signals = evidence.signals(
            [row_of[sku] for sku in task.question], [row_of[sku] for sku in task.answers]
        )
        # (grid, answers)
        scores = content(task.question, task.answers) + BLEND_GRID @ signals[: BLEND_GRID.shape[1]]
        found.append(np.argmax(scores, axis=1) == task.correct)
    return np.array(found, dtype=bool).reshape(-1, len(BLEND_GRID))


def best_blend(right: np.ndarray) -> int:
    """The row of BLEND_GRID that answers most of `right`'s questions, a tie going to the
    smaller weights."""
    counts = right.sum(axis=0)
    return max(range(len(BLEND_GRID)), key=lambda g: (counts[g], -BLEND_GRID[g].sum()))


def training_content(
    index: CompatibilityIndex, train_rows: list[list[int]], hub_penalty: float
) -> SkuScorer:
    """The content score the training weighed the signals with: the version's space and
    models, the hub penalty's centres of the training's own outfits (the version's own are
    of every outfit, held-out ones included)."""
    served = index.scorer
    base = served.base if isinstance(served, OutfitScorer) else served
    assert isinstance(base, TypeAwareScorer)
    vectors = np.asarray(index.vectors)
    centres = query_centres(base.pair_weights, vectors, index.categories, train_rows, hub_penalty)
    pairs = TypeAwareScorer(base.pair_weights, None, centres)
    scorer = OutfitScorer(pairs, served.model) if isinstance(served, OutfitScorer) else pairs
    return SkuScorer(scorer, vectors, index.categories, index.row_of_sku)


def probe_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments of a probe of the active version on the Mango split."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--seed", type=int, help="the version's training seed (its manifest's)")
    parser.add_argument("--hub-penalty", type=float, help="the version's (its manifest's)")
    parser.add_argument("--results", type=Path, required=True)
    return parser


def trained_options(version: Any, arguments: argparse.Namespace) -> TrainingOptions:
    """The seed, hub penalty and held-out share the version was trained with (its manifest;
    the defaults for a manifest without them), --seed and --hub-penalty overriding."""
    stored = version.manifest.get("options", {})
    kept = ("seed", "hub_penalty", "validation_fraction")
    options = TrainingOptions(**{name: stored[name] for name in kept if name in stored})
    if arguments.seed is not None:
        options = replace(options, seed=arguments.seed)
    if arguments.hub_penalty is not None:
        options = replace(options, hub_penalty=arguments.hub_penalty)
    return options


def training_validation(
    index: CompatibilityIndex, outfits: list[list[str]], options: TrainingOptions
) -> tuple[list[list[int]], Validation]:
    """The rows of the training outfits a version of these options trained on, and its own
    held-out questions, drawn as it drew them (Validation.of reads the catalog's SKUs and
    categories alone): its one blank per outfit and its blend's blanks."""
    row_of = index.row_of_sku
    train_at, held_at = split_outfits(outfits, options.validation_fraction)
    train_rows = [[row_of[s] for s in outfits[i]] for i in train_at]
    validation = Validation.of(
        cast(TrainingCatalog, SimpleNamespace(skus=index.skus, categories=index.categories)),
        train_rows,
        [[row_of[s] for s in outfits[i]] for i in held_at],
        np.random.default_rng(options.seed),
    )
    return train_rows, validation


def main() -> None:
    parser = probe_parser(__doc__)
    parser.add_argument("--draws", type=int, default=3, help="draws of every blank")
    arguments = parser.parse_args()
    version, index = active_version()
    options = trained_options(version, arguments)
    skus, row_of = list(index.skus), index.row_of_sku
    category_of = dict(zip(skus, index.categories, strict=True))
    outfits = read_training_outfits(arguments.split)
    train_at, held_at = split_outfits(outfits, options.validation_fraction)
    train = [outfits[i] for i in train_at]
    held_out = [outfits[i] for i in held_at]
    train_rows = [[row_of[s] for s in o] for o in train]
    evidence = CoOccurrence.from_outfits(train_rows, 0.0)
    content = training_content(index, train_rows, options.hub_penalty)
    rng = np.random.default_rng(options.seed)
    as_trained, _ = make_tasks(held_out, category_of, rng)
    more = [t for _ in range(arguments.draws) for t in every_blank(held_out, category_of, rng)]
    choices = {
        "one blank per held-out outfit (the training's)": blend_grid_right(
            content, evidence, row_of, as_trained
        ),
        f"every blank, {arguments.draws} draws": blend_grid_right(content, evidence, row_of, more),
    }
    worn = {s for o in train for s in o}
    known = [t for t in more if t.answers[t.correct] in worn]
    choices["every blank, answers worn in training"] = blend_grid_right(
        content, evidence, row_of, known
    )
    mixed = [t for t in as_trained if t.answers[t.correct] in worn]
    choices["one blank per outfit, answers worn in training"] = blend_grid_right(
        content, evidence, row_of, mixed
    )
    served = index.scorer.options
    results: dict[str, object] = {
        "machine": machine(),
        "code": code_version(),
        "version": version.name,
        "served_weights": [
            served["cooccurrence_weight"],
            served.get("second_order_weight", 0.0),
            served.get("overlap_weight", 0.0),
        ],
    }
    found: dict[str, dict] = {}
    every = CoOccurrence.from_outfits([[row_of[s] for s in o] for o in outfits], 0.0)
    served_content = index.sku_scorer(index.scorer.content_only())
    warm = blend_grid_right(
        served_content,
        every,
        row_of,
        [
            FitbTask(tuple(t["question"]), tuple(t["answers"]), t["correct"], t["category"])
            for t in json.loads((arguments.split / "warm_fitb.json").read_text())
        ],
    )
    for name, right in choices.items():
        g = best_blend(right)
        found[name] = {
            "questions": len(right),
            "weights": BLEND_GRID[g].tolist(),
            "held_out_fitb": float(right[:, g].mean()),
            "split_warm": float(warm[:, g].mean()),
        }
        print(name, json.dumps(found[name]))
    results["choices"] = found
    rebuilt = found["one blank per held-out outfit (the training's)"]["weights"]
    results["rebuilt_choice_is_the_versions"] = rebuilt == results["served_weights"]
    print("the rebuilt choice is the version's:", results["rebuilt_choice_is_the_versions"])
    g = int(np.argmax(warm.mean(axis=0)))
    results["best_on_split_warm"] = {
        "weights": BLEND_GRID[g].tolist(),
        "fitb": float(warm[:, g].mean()),
    }
    print("best on the split's warm questions", json.dumps(results["best_on_split_warm"]))
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
