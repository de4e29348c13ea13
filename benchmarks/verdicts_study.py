"""Do stylists' verdicts help? Simulated on the Mango split: half of the held-out outfits play
the stylist, the other half scores the model.

    OUTFITS_VAR_DIR=… .venv/bin/python benchmarks/verdicts_study.py \\
        --backbone /tmp/source-domains/mango+fashion-product-images.safetensors \\
        [--split /tmp/mango-split] [--verdicts 500] [--seeds 0 1] [--results F]

The held-out outfits (cold and warm) are split at random into a verdict half and an
evaluation half. A model is trained on the training outfits (backbone frozen, as in
transfer_study.py). Then a simulated stylist looks at that model's matches for the items of
the verdict half's outfits, one (item, outfit-mate's category) at a time: when the outfit-mate
is among the model's 10 best of its category the stylist says "good pair" of it; when it is
not, "bad pair" of the model's best, until --verdicts verdicts are given. The same training
is repeated with the verdicts (triplets.verdict_triplets), and both models are scored on the
evaluation half alone (outfits no verdict came from): FITB and compatibility AUC, cold and
warm, with standard errors, per seed.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import MANGO, load_catalog, load_split  # noqa: E402
from embeddings.engine.backbone import load_backbone  # noqa: E402
from embeddings.engine.encode import encode_items  # noqa: E402
from embeddings.engine.evaluate import evaluate_tasks  # noqa: E402
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.train import ItemEncoder  # noqa: E402
from embeddings.engine.triplets import Verdicts  # noqa: E402

TOP = 10  # how deep the simulated stylist looks for the outfit-mate


def halves(tasks, rng: np.random.Generator):
    """Each split's (FITB, compatibility) tasks divided by outfit into a verdict half and an
    evaluation half; and the verdict half's outfits (as SKUs)."""
    verdict_outfits: list[tuple[str, ...]] = []
    evaluation = {}
    for split, (fitb, compatibility) in tasks.items():
        # The compatibility file lists each held-out outfit, then its corrupted copy.
        pairs = [compatibility[i : i + 2] for i in range(0, len(compatibility), 2)]
        chosen = rng.random(len(pairs)) < 0.5
        judged = {frozenset(p[0].items) for p, c in zip(pairs, chosen, strict=True) if c}
        verdict_outfits += [tuple(items) for items in judged]
        evaluation[split] = (
            [t for t in fitb if frozenset((*t.question, t.answers[t.correct])) not in judged],
            [line for p, c in zip(pairs, chosen, strict=True) if not c for line in p],
        )
    return verdict_outfits, evaluation


def simulated_verdicts(
    space, row_of: dict[str, int], families: list[str], outfits, count: int, rng
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """A stylist's `count` verdicts on the model's matches for the verdict half's items."""
    scorer = TypeAwareScorer(space.pair_weights)
    rows_of: dict[str, np.ndarray] = {}
    for row, family in enumerate(families):
        rows_of.setdefault(family, []).append(row)  # type: ignore[arg-type]
    rows_of = {family: np.asarray(rows) for family, rows in rows_of.items()}
    good: list[tuple[int, int]] = []
    bad: list[tuple[int, int]] = []
    for number in rng.permutation(len(outfits)).tolist():
        members = [row_of[sku] for sku in outfits[number]]
        for anchor in members:
            for mate in members:
                if families[anchor] == families[mate] or len(good) + len(bad) >= count:
                    continue
                pool = rows_of[families[mate]]
                query = scorer.query(space.vectors[anchor], families[anchor], families[mate])
                best = pool[np.argsort(-(space.vectors[pool] @ query))[:TOP]]
                if mate in best:
                    good.append((anchor, mate))
                elif best[0] != anchor:
                    bad.append((anchor, int(best[0])))
    return good, bad


def figures(space, row_of, tasks) -> dict[str, float]:
    scorer = SkuScorer(TypeAwareScorer(space.pair_weights), space.vectors, space.categories, row_of)
    found = {}
    for split, (fitb, compatibility) in tasks.items():
        results = evaluate_tasks(scorer, fitb, compatibility)
        found |= {
            f"{split}_fitb": results.fitb_accuracy,
            f"{split}_fitb_se": results.fitb_standard_error,
            f"{split}_auc": results.compatibility_auc,
            f"{split}_auc_se": results.compatibility_auc_standard_error,
            f"{split}_questions": len(fitb),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--verdicts", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "verdicts_study.json")
    arguments = parser.parse_args()

    skus, images, texts, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    train, tasks = load_split(arguments.split, row_of)
    vectors = encode_items(load_backbone("outfits-tiny", str(arguments.backbone)), images, texts)
    runs = []
    for seed in arguments.seeds:
        rng = np.random.default_rng(seed)
        verdict_outfits, evaluation = halves(tasks, rng)
        options = TrainingOptions(epochs=arguments.epochs, seed=seed)
        plain = fit_space(
            TrainingCatalog(skus, families, ItemEncoder(vectors), train), train, options
        )
        good, bad = simulated_verdicts(
            plain.space, row_of, families, verdict_outfits, arguments.verdicts, rng
        )
        judged = fit_space(
            TrainingCatalog(skus, families, ItemEncoder(vectors), train, Verdicts.of(good, bad)),
            train,
            options,
        )
        run = {
            "seed": seed,
            "good": len(good),
            "bad": len(bad),
            "without": figures(plain.space, row_of, evaluation),
            "with": figures(judged.space, row_of, evaluation),
        }
        runs.append(run)
        print(json.dumps(run), flush=True)
    arguments.results.write_text(json.dumps(runs, indent=1))
    print(
        "\n| seed | verdicts (good / bad) | model | cold FITB | warm FITB | cold AUC | warm AUC |"
    )
    print("|---:|---|---|---:|---:|---:|---:|")
    for run in runs:
        for arm in ("without", "with"):
            f = run[arm]
            print(
                f"| {run['seed']} | {run['good']} / {run['bad']} | {arm} verdicts "
                f"| {f['cold_fitb']:.3f} ± {f['cold_fitb_se']:.3f} "
                f"| {f['warm_fitb']:.3f} ± {f['warm_fitb_se']:.3f} "
                f"| {f['cold_auc']:.3f} ± {f['cold_auc_se']:.3f} "
                f"| {f['warm_auc']:.3f} ± {f['warm_auc_se']:.3f} |"
            )


if __name__ == "__main__":
    main()
