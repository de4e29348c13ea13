"""The outfit-level scorer's ablation on the Mango split: a trained version's item vectors (the
space `manage.py train` learned) scored by its type-aware pairs and by outfit-level models
trained on the split's training outfits (engine/outfit_training.py), with random or mined
negatives, over several seeds. Reports cold and warm FITB and AUC with their standard errors,
content alone (no co-occurrence: what a new arrival gets) and served (the version's blend), and
Recall@10/30/50 of the cold answers within their family; writes the raw results (JSON).

    .venv/bin/python benchmarks/outfit_scorer.py --version var/models/<version> \\
        [--split var/mango-split] [--seeds 0 1 2] [--epochs 20] [--results FILE] \\
        [--variant "128 negatives=negatives:128" …]   # other outfit models than the ablation's
"""

import argparse
import json
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import family_members, load_split, split_figures  # noqa: E402
from embeddings.engine.index import CompatibilityIndex  # noqa: E402
from embeddings.engine.outfit_training import (  # noqa: E402
    OutfitTrainingConfig,
    train_outfit_model,
)
from embeddings.engine.scorers import OutfitScorer, TypeAwareScorer  # noqa: E402

LOOK_BEAM = 48  # outfits complete the look ranks whole (outfits/recommendations.py)


def serving_cost(index: CompatibilityIndex, scorer, outfits: list[list[int]]) -> dict[str, float]:
    """Median milliseconds of complete the look's engine work with `scorer`: each complementary
    category's candidates for a partial outfit of two items, and the whole-outfit scores of a
    beam of outfits of five."""
    served = replace(index, scorer=scorer)
    rng = np.random.default_rng(0)
    candidates_ms, beam_ms = [], []
    long_enough = [o for o in outfits if len(o) >= 5]
    for outfit in long_enough[:100]:
        anchors = [index.skus[row] for row in outfit[:2]]
        started = time.perf_counter()
        for category in served.complements_of(index.categories[outfit[0]]):
            served.outfit_candidates(anchors, category, 23)
        candidates_ms.append(1000 * (time.perf_counter() - started))
        beam = [
            [index.skus[r] for r in long_enough[i][:5]]
            for i in rng.choice(len(long_enough), LOOK_BEAM)
        ]
        started = time.perf_counter()
        served.outfit_scores(beam)
        beam_ms.append(1000 * (time.perf_counter() - started))
    return {
        "candidates_ms": float(np.median(candidates_ms)),
        "beam_ms": float(np.median(beam_ms)),
    }


VARIANTS = {
    "outfit model, random negatives": {"hard_fraction": 0.0},
    "outfit model, half mined negatives": {"hard_fraction": 0.5},
}


def parse_variant(text: str) -> tuple[str, dict[str, float | int]]:
    """'NAME=FIELD:VALUE,…' → (NAME, {FIELD: VALUE}), each field a number of
    OutfitTrainingConfig other than the ones every variant shares (seed, epochs)."""
    name, _, changes = text.partition("=")
    if not name or ":" not in changes:
        raise ValueError(f"--variant {text!r}: expected NAME=FIELD:VALUE,…")
    numbers = {
        f.name: f.type
        for f in fields(OutfitTrainingConfig)
        if f.type in (int, float, "int", "float") and f.name not in ("seed", "epochs")
    }
    found: dict[str, float | int] = {}
    for change in changes.split(","):
        field, _, value = change.partition(":")
        if field not in numbers:
            raise ValueError(f"--variant {text!r}: {field!r} is not one of {', '.join(numbers)}")
        found[field] = int(value) if numbers[field] in (int, "int") else float(value)
    return name, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=Path, required=True, help="a trained version's folder")
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "outfit_scorer.json")
    parser.add_argument(
        "--variant",
        action="append",
        metavar="NAME=FIELD:VALUE,…",
        help="outfit-model variants to train instead of the ablation's two, e.g. "
        "'256 negatives=negatives:256' (OutfitTrainingConfig fields)",
    )
    arguments = parser.parse_args()
    variants = VARIANTS
    if arguments.variant:
        try:
            variants = dict(parse_variant(text) for text in arguments.variant)
        except ValueError as error:
            parser.error(str(error))

    index = CompatibilityIndex.load(arguments.version)
    pairs = index.scorer.base if isinstance(index.scorer, OutfitScorer) else index.scorer
    assert isinstance(pairs, TypeAwareScorer)
    train, tasks = load_split(arguments.split, dict(index.row_of_sku))
    members = family_members(index.skus, index.categories)
    vectors = np.asarray(index.vectors)
    weight = pairs.cooccurrence.weight
    rows = []

    def record(name: str, seed: int | None, scorer, seconds: float = 0.0) -> None:
        for blend, scored in (("content", scorer.content_only()), ("served", scorer)):
            row = {"scorer": name, "seed": seed, "blend": blend, "seconds": seconds}
            row |= split_figures(index.sku_scorer(scored), tasks, members)
            rows.append(row)
            print(json.dumps(row), flush=True)

    record("type-aware pairs", None, pairs)
    for name, changes in variants.items():
        for seed in arguments.seeds:
            config = replace(OutfitTrainingConfig(epochs=arguments.epochs, seed=seed), **changes)
            started = time.perf_counter()
            model, losses = train_outfit_model(
                vectors, index.categories, train, pairs.pair_weights, config
            )
            seconds = time.perf_counter() - started
            print(
                f"# {name}, seed {seed}: {seconds:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}",
                file=sys.stderr,
            )
            record(name, seed, OutfitScorer(pairs, model), round(seconds, 1))

    model, _ = train_outfit_model(
        vectors, index.categories, train, pairs.pair_weights, OutfitTrainingConfig(epochs=1)
    )
    costs = {
        "type-aware pairs": serving_cost(index, pairs, train),
        "outfit model": serving_cost(index, OutfitScorer(pairs, model), train),
    }
    print(f"\nco-occurrence weight of the served blend: {weight}")
    print("\ncomplete the look's engine work, median ms (candidates of every complementary")
    print(f"category for 2 anchors; whole-outfit scores of {LOOK_BEAM} outfits of 5):")
    for name, cost in costs.items():
        print(f"- {name}: candidates {cost['candidates_ms']:.2f}, beam {cost['beam_ms']:.2f}")
    print(
        "\n| scorer | blend | cold FITB | warm FITB | cold AUC | warm AUC | cold R@10 | "
        "cold R@30 | cold R@50 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ["type-aware pairs", *variants]:
        for blend in ("content", "served"):
            mine = [r for r in rows if r["scorer"] == name and r["blend"] == blend]

            def cell(key: str, se: str | None = None, mine=mine) -> str:
                values = [r[key] for r in mine]
                text = f"{np.mean(values):.3f}"
                if len(values) > 1:
                    text += f" (seeds {min(values):.3f}–{max(values):.3f})"
                if se:
                    text += f" ± {np.mean([r[se] for r in mine]):.3f}"
                return text

            print(
                f"| {name} | {blend} | {cell('cold_fitb', 'cold_fitb_se')} "
                f"| {cell('warm_fitb', 'warm_fitb_se')} | {cell('cold_auc', 'cold_auc_se')} "
                f"| {cell('warm_auc', 'warm_auc_se')} | {cell('cold_recall_at_10')} "
                f"| {cell('cold_recall_at_30')} | {cell('cold_recall_at_50')} |"
            )
    arguments.results.write_text(
        json.dumps(
            {
                "arguments": vars(arguments),
                "config": asdict(OutfitTrainingConfig(epochs=arguments.epochs)),
                "rows": rows,
                "serving_ms": costs,
            },
            default=str,
            indent=1,
        )
    )
    print(f"\nresults: {arguments.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
