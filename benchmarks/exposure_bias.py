"""Does the content model prefer items it was trained on? The cold FITB questions asked again
with their wrong answers swapped for known items of the same population.

The split makes new arrivals by lot: 15% of the products in at most 3 outfits. The other 85%
of those products are known items of the same population that differ from new arrivals only
in that training saw them. So each cold question (a new arrival's blank, three other new
arrivals as wrong answers) is asked again with three wrong answers drawn from that matched
pool, in the same family (several draws): what the score loses is what training exposure
alone buys a wrong answer. The warm questions whose answer is in no training outfit face known
wrong answers (two in three), and lose there.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/exposure_bias.py \\
        --split /tmp/mango-split [--results docs/exposure_bias.json]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402

RARE = 3  # the split draws new arrivals from products in at most this many outfits
DRAWS = 5  # matched wrong answers drawn per question


def outfit_counts(outfits_csv: Path) -> Counter[str]:
    with outfits_csv.open(newline="") as handle:
        return Counter(row["sku"] for row in csv.DictReader(handle))


def paired(base: np.ndarray, other: np.ndarray) -> dict:
    """Both accuracies and their paired difference with its standard error."""
    difference = other - base
    return {
        "original": float(base.mean()),
        "matched_known": float(other.mean()),
        "difference": float(difference.mean()),
        "standard_error": float(difference.std(ddof=1) / np.sqrt(len(difference))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "exposure_bias.json")
    parser.add_argument(
        "--outfits",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "mango" / "outfits.csv",
        help="the Mango outfits.csv (all outfits: each product's rarity)",
    )
    arguments = parser.parse_args()
    if not arguments.outfits.is_file():
        raise SystemExit(f"{arguments.outfits} not found: the Mango data set is needed.")
    version, index = active_version()
    in_outfits = outfit_counts(arguments.outfits)
    known = {sku for outfit in read_training_outfits(arguments.split) for sku in outfit}
    matched: dict[str, list[str]] = {}  # family -> known items as rare as new arrivals
    for sku, category in zip(index.skus, index.categories, strict=True):
        if sku in known and in_outfits[sku] <= RARE:
            matched.setdefault(category, []).append(sku)
    questions = json.loads((arguments.split / "cold_fitb.json").read_text())
    scorers = {
        "content_alone": index.sku_scorer(index.scorer.content_only()),
        "served": index.sku_scorer(index.scorer),
    }
    rng = np.random.default_rng(0)
    asked = []  # (question, original answers, [answers with matched wrong ones] per draw)
    for task in questions:
        pool = [sku for sku in matched.get(task["category"], []) if sku not in task["question"]]
        if len(pool) < 3:
            continue
        answer = task["answers"][task["correct"]]
        draws = [[answer, *rng.choice(pool, size=3, replace=False).tolist()] for _ in range(DRAWS)]
        asked.append((task, draws))
    results: dict = {
        "machine": machine(),
        "code": code_version(),
        "version": version.name,
        "scorer": index.scorer.kind,
        "questions": len(asked),
        "draws": DRAWS,
        "matched_pool": sum(len(skus) for skus in matched.values()),
    }
    for name, score in scorers.items():
        base, other = [], []
        for task, draws in asked:
            base.append(int(np.argmax(score(task["question"], task["answers"]))) == task["correct"])
            # the answer first in each draw: right when it scores highest
            other.append(np.mean([int(np.argmax(score(task["question"], d))) == 0 for d in draws]))
        results[name] = paired(np.asarray(base, float), np.asarray(other, float))
        found = results[name]
        print(
            f"{name:14} cold FITB {found['original']:.3f} with new arrivals as wrong answers, "
            f"{found['matched_known']:.3f} with known items as rare ({found['difference']:+.3f}"
            f" ± {found['standard_error']:.3f}; {len(asked)} questions × {DRAWS} draws)"
        )
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
