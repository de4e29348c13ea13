"""What signals beside the active version's score would add on the Mango split: an upper bound,
each signal's weight chosen on the split's own questions (a training could only do worse).

- Known items (warm FITB): the curated co-occurrence the served score blends in; the
  second-order one (the answer worn with items worn with the question's items: collaborative
  filtering's item-to-item walk, which alone answers more warm questions than direct
  co-occurrence); popularity (how often the answer is worn with anything).
- New arrivals (content alone, cold Recall@10 and FITB): a hub penalty, each candidate's score
  less its mean score against a sample of training outfits wanting its family (CSLS, the
  standard cure for items that rank high for every query).

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/score_signals.py \\
        --split /tmp/mango-split [--results docs/score_signals.json]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import csv
import json
import math
import os
import sys
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import code_version, machine  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402

DIRECT = (0.0, 0.5, 1.0, 2.0, 4.0)  # the weights a training tries
SECOND_ORDER = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
POPULARITY = (0.0, 0.05, 0.1, 0.2)
HUB_PENALTY = (0.0, 0.25, 0.5, 0.75, 1.0)
HUB_SAMPLE = 40  # training outfits per family whose mean score is a candidate's hubness


def known_item_signals(index, questions: list[dict]) -> dict:
    """Warm FITB of content + a·direct + b·second-order + c·popularity over the grid."""
    partners = index.scorer.partners
    row_of = index.row_of_sku
    worn = {row: sum(seen.values()) for row, seen in partners.items()}

    def second_order(anchors: list[int], row: int) -> float:
        total = 0.0
        for anchor in anchors:
            for middle, together in partners.get(anchor, {}).items():
                onward = partners.get(middle, {}).get(row, 0)
                if onward and middle != row:
                    total += math.log1p(together) * math.log1p(onward) / math.log1p(worn[middle])
        return total / len(anchors)

    content = index.sku_scorer(index.scorer.content_only())
    features = []
    for task in questions:
        anchors = [row_of[sku] for sku in task["question"]]
        rows = [row_of[sku] for sku in task["answers"]]
        features.append(
            (
                np.asarray(content(task["question"], task["answers"])),
                CoOccurrence(partners, 1.0).bonus(anchors, rows),  # what the blend adds, w = 1
                np.array([second_order(anchors, row) for row in rows]),
                np.array([math.log1p(worn.get(row, 0)) for row in rows]),
                task["correct"],
            )
        )

    def accuracy(a: float, b: float, c: float) -> float:
        return float(
            np.mean(
                [
                    int(np.argmax(s + a * d + b * t + c * p)) == right
                    for s, d, t, p, right in features
                ]
            )
        )

    grid = [
        {"direct": a, "second_order": b, "popularity": c, "fitb": accuracy(a, b, c)}
        for a, b, c in product(DIRECT, SECOND_ORDER, POPULARITY)
    ]

    def best(**fixed: float) -> dict:
        return max(
            (g for g in grid if all(g[k] == v for k, v in fixed.items())),
            key=lambda g: g["fitb"],
        )

    served = index.scorer.options["cooccurrence_weight"]
    return {
        "questions": len(questions),
        "content_alone": accuracy(0, 0, 0),
        "served_blend": accuracy(served, 0, 0),
        "served_weight": served,
        "second_order_then_content": accuracy(0, 1000.0, 0),
        "best_direct_only": best(second_order=0.0, popularity=0.0),
        "best_without_popularity": best(popularity=0.0),
        "best_without_second_order": best(second_order=0.0),
        "best_of_all": best(),
    }


def hub_penalty(index, questions: list[dict], split: Path) -> list[dict]:
    """Content-alone cold FITB and Recall@10 with each candidate's hubness subtracted."""
    from catalog.models import Product

    content = index.sku_scorer(index.scorer.content_only())
    active = set(Product.objects.filter(active=True).values_list("sku", flat=True))
    category_of = dict(zip(index.skus, index.categories, strict=True))
    members: dict[str, list[str]] = {}
    for sku, category in category_of.items():
        if sku in active:
            members.setdefault(category, []).append(sku)
    outfits: dict[str, list[str]] = {}
    with (split / "train_outfits.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            outfits.setdefault(row["outfit_id"], []).append(row["sku"])
    rng = np.random.default_rng(0)
    hubness: dict[str, float] = {}
    for category, skus in members.items():
        wanting = [
            [sku for sku in outfit if category_of[sku] != category]
            for outfit in outfits.values()
            if any(category_of[sku] == category for sku in outfit)
        ]
        wanting = [anchors for anchors in wanting if anchors]
        if not wanting:
            hubness |= dict.fromkeys(skus, 0.0)
            continue
        picked = rng.choice(len(wanting), size=min(HUB_SAMPLE, len(wanting)), replace=False)
        mean = np.mean([content(wanting[i], skus) for i in picked], axis=0)
        hubness |= dict(zip(skus, mean.tolist(), strict=True))
    found: dict[float, tuple[list[bool], list[bool]]] = {a: ([], []) for a in HUB_PENALTY}
    for task in questions:
        pool = [sku for sku in members[task["category"]] if sku not in task["question"]]
        scores = content(task["question"], pool)
        penalty = np.array([hubness[sku] for sku in pool])
        right = pool.index(task["answers"][task["correct"]])
        answers = [pool.index(sku) for sku in task["answers"]]
        for alpha, (recall, fitb) in found.items():
            adjusted = scores - alpha * penalty
            recall.append(int((adjusted > adjusted[right]).sum()) < 10)
            fitb.append(int(np.argmax(adjusted[answers])) == task["correct"])
    return [
        {"hub_penalty": a, "recall_at_10": float(np.mean(r)), "fitb": float(np.mean(f))}
        for a, (r, f) in found.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "score_signals.json")
    arguments = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
    import django

    django.setup()
    from embeddings.loaded_versions import active_compatibility_index

    active = active_compatibility_index()
    if active is None:
        raise SystemExit("No active model version: train one first (manage.py train).")
    version, index = active

    def questions(name: str) -> list[dict]:
        return json.loads((arguments.split / f"{name}_fitb.json").read_text())

    warm = known_item_signals(index, questions("warm"))
    cold = hub_penalty(index, questions("cold"), arguments.split)
    print(f"version {version.name} ({index.scorer.kind}); warm, {warm['questions']} questions:")
    for key in ("content_alone", "served_blend", "second_order_then_content"):
        print(f"  {key:28} {warm[key]:.3f}")
    for key in (
        "best_direct_only",
        "best_without_popularity",
        "best_without_second_order",
        "best_of_all",
    ):
        g = warm[key]
        print(
            f"  {key:28} {g['fitb']:.3f}  (direct {g['direct']}, second order "
            f"{g['second_order']}, popularity {g['popularity']})"
        )
    print("cold, content alone, hub penalty:")
    for row in cold:
        print(f"  {row['hub_penalty']:<5} R@10 {row['recall_at_10']:.3f}  FITB {row['fitb']:.3f}")
    arguments.results.write_text(
        json.dumps(
            {
                "machine": machine(),
                "code": code_version(),
                "version": version.name,
                "scorer": index.scorer.kind,
                "warm": warm,
                "cold_hub_penalty": cold,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
