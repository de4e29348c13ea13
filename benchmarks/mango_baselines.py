"""Non-learned baselines on the Mango validation split (benchmarks/mango_split.py), scored on
the same task files as `manage.py evaluate`: random, popularity, item co-occurrence and
attribute co-occurrence (family × colour × line × fabric).

    .venv/bin/python benchmarks/mango_baselines.py [--split var/mango-split]
"""

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Callable
from itertools import permutations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.mango_split import read_training_outfits  # noqa: E402
from embeddings.engine.evaluate import read_compatibility_tasks, read_fitb_tasks, roc_auc  # noqa: E402

MANGO = ROOT.parent / "shared" / "datasets" / "mango"
PairScore = Callable[[str, str], float]


def fitb_accuracy(tasks, pair_score: PairScore, rng: np.random.Generator) -> float:
    hits = []
    for task in tasks:
        scores = np.array(
            [np.mean([pair_score(q, a) for q in task.question]) for a in task.answers]
        )
        best = np.flatnonzero(scores == scores.max())
        hits.append(int(rng.choice(best)) == task.correct)  # ties broken at random
    return float(np.mean(hits))


def recall_at(
    tasks, pair_score: PairScore, members: dict[str, list[str]], k: int, rng: np.random.Generator
) -> float:
    """Share of questions whose answer ranks in the top k of its whole family (ties broken at
    random, so a constant score is chance, not a free hit)."""
    hits = []
    for task in tasks:
        right = task.answers[task.correct]
        pool = [sku for sku in members[task.category] if sku not in task.question]
        scores = np.array([np.mean([pair_score(q, c) for q in task.question]) for c in pool])
        scores = scores + rng.random(len(scores)) * 1e-9
        hits.append(int((scores > scores[pool.index(right)]).sum()) < k)
    return float(np.mean(hits))


def compatibility_auc(tasks, pair_score: PairScore) -> float:
    scores = [np.mean([pair_score(a, b) for a, b in permutations(t.items, 2)]) for t in tasks]
    return roc_auc([t.label for t in tasks], scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    arguments = parser.parse_args()
    with (arguments.data / "products.csv").open(newline="") as handle:
        products = {row["cod_modelo_color"]: row for row in csv.DictReader(handle)}
    train = read_training_outfits(arguments.split)

    popularity = Counter(sku for items in train for sku in items)
    pairs = Counter(pair for items in train for pair in permutations(set(items), 2))

    def attributes(sku: str) -> tuple[str, ...]:
        p = products[sku]
        return (p["des_product_family"], p["des_agrup_color_eng"], p["des_line"], p["des_fabric"])

    attribute_pairs = Counter(
        pair for items in train for pair in permutations({attributes(s) for s in items}, 2)
    )
    # Each attribute on its own (family with family, colour with colour, …), as PMI: how much
    # likelier stylists combine the two values than chance.
    per_attribute = [Counter() for _ in range(4)]
    value_counts = [Counter() for _ in range(4)]
    for items in train:
        for k in range(4):
            values = [attributes(s)[k] for s in items]
            value_counts[k].update(values)
            per_attribute[k].update(permutations(values, 2))
    totals = [sum(c.values()) for c in value_counts]

    def attribute_pmi(a: str, b: str) -> float:
        score = 0.0
        for k, (x, y) in enumerate(zip(attributes(a), attributes(b), strict=True)):
            joint = per_attribute[k][(x, y)]
            if joint:
                score += np.log(joint * totals[k] / (value_counts[k][x] * value_counts[k][y]))
        return score

    baselines: dict[str, PairScore] = {
        "random": lambda a, b: 0.0,
        "popularity": lambda a, b: float(popularity[b] + popularity[a]),
        "item co-occurrence": lambda a, b: float(pairs[(a, b)]),
        "attribute co-occurrence": lambda a, b: float(
            attribute_pairs[(attributes(a), attributes(b))]
        ),
        "attribute PMI (each attribute)": attribute_pmi,
    }
    members: dict[str, list[str]] = {}
    for sku, product in products.items():
        members.setdefault(product["des_product_family"], []).append(sku)
    print("| baseline | cold FITB | warm FITB | cold AUC | warm AUC | cold Recall@10 |")
    print("|---|---:|---:|---:|---:|---:|")
    tasks = {
        split: (
            read_fitb_tasks(arguments.split / f"{split}_fitb.json"),
            read_compatibility_tasks(arguments.split / f"{split}_compat.txt"),
        )
        for split in ("cold", "warm")
    }
    for name, pair_score in baselines.items():
        rng = np.random.default_rng(0)
        cells = [fitb_accuracy(tasks[s][0], pair_score, rng) for s in ("cold", "warm")]
        cells += [compatibility_auc(tasks[s][1], pair_score) for s in ("cold", "warm")]
        cells.append(recall_at(tasks["cold"][0], pair_score, members, 10, rng))
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
