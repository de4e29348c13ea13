"""What the outfits' evidence is worth read by style (a garment's colourways pooled) instead of
by item, on the Mango split: an item in no training outfit whose other colourway the stylists
wore gets that colourway's evidence, as a store's new colourway of a known style would.

Mango's SKU is model-colour (41085800-02), so the model code stands for the style column a
store's feed has (Google's item_group_id, Shopify's product over its variants). The probe
rebuilds the active version's three outfit signals (cooccurrence.py) from the split's training
outfits twice, by item and by style, and adds each to the version's content score: served
FITB cold and warm at the version's weights, both side by side (style at λ times them), at the
best weights of a grid (an upper bound), and served cold Recall@10 within the family; and how
many answers in no training outfit have a colourway that is in one (and worn with a question
item's style).

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/style_evidence.py \\
        --split /tmp/mango-split --results /tmp/style_evidence.json
"""

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.blend_choice import BLEND_GRID  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from benchmarks.transfer_study import family_members  # noqa: E402
from embeddings.engine.cooccurrence import SIGNALS, CoOccurrence  # noqa: E402
from embeddings.engine.index import CompatibilityIndex  # noqa: E402

BESIDE = (0.1, 0.25, 0.5, 1.0)  # λ: style at λ times the version's weights, beside the item's
Features = list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]


def style_of(sku: str) -> str:
    return sku.split("-")[0]


def features(
    index: CompatibilityIndex,
    questions: list[dict],
    item: CoOccurrence,
    style: CoOccurrence,
    style_id: Mapping[str, int],
) -> Features:
    """Per question: content scores, item signals (6, 4), style signals (6, 4), the answer."""
    content = index.sku_scorer(index.scorer.content_only())
    row_of = index.row_of_sku
    found = []
    for task in questions:
        found.append(
            (
                np.asarray(content(task["question"], task["answers"])),
                item.signals(
                    [row_of[s] for s in task["question"]], [row_of[s] for s in task["answers"]]
                ),
                style.signals(
                    [style_id[s] for s in task["question"]], [style_id[s] for s in task["answers"]]
                ),
                task["correct"],
            )
        )
    return found


def fitb(found: Features, item_weights: np.ndarray, style_weights: np.ndarray) -> float:
    return float(
        np.mean(
            [
                int(np.argmax(c + item_weights @ i + style_weights @ s)) == right
                for c, i, s, right in found
            ]
        )
    )


def best(found: Features, by: Literal["item", "style"]) -> dict:
    """The best FITB of the weights a training tries, with the signals read `by` item or
    style."""
    top = {"fitb": -1.0}
    zero = np.zeros(len(SIGNALS))
    for grid_row in BLEND_GRID:
        w = np.r_[grid_row, np.zeros(len(SIGNALS) - len(grid_row))]  # exposure at 0
        score = fitb(found, w, zero) if by == "item" else fitb(found, zero, w)
        if score > top["fitb"]:
            top = {"fitb": score, "weights": grid_row.tolist()}
    return top


def recall_at_10(
    index: CompatibilityIndex,
    questions: list[dict],
    item: CoOccurrence,
    style: CoOccurrence,
    style_id: Mapping[str, int],
    weights: np.ndarray,
) -> dict[str, float]:
    """Served cold Recall@10 within the family, by item and by style."""
    content = index.sku_scorer(index.scorer.content_only())
    members = family_members(index.skus, index.categories)
    hits = {"item": [], "style": []}
    for task in questions:
        pool = [s for s in members[task["category"]] if s not in task["question"]]
        right = pool.index(task["answers"][task["correct"]])
        base = np.asarray(content(task["question"], pool))
        anchors = [index.row_of_sku[s] for s in task["question"]]
        by_item = base + weights @ item.signals(anchors, [index.row_of_sku[s] for s in pool])
        by_style = base + weights @ style.signals(
            [style_id[s] for s in task["question"]], [style_id[s] for s in pool]
        )
        for name, scores in (("item", by_item), ("style", by_style)):
            hits[name].append(int((scores > scores[right]).sum()) < 10)
    return {name: float(np.mean(h)) for name, h in hits.items()}


def colourways(
    questions: list[dict], outfits: list[list[str]], style_id: Mapping[str, int]
) -> dict[str, int]:
    """Of the answers in no training outfit: how many have a colourway in one, and how many a
    colourway worn with a question item's style."""
    worn = {sku for outfit in outfits for sku in outfit}
    styles_worn = {style_id[sku] for sku in worn}
    with_style: dict[int, set[int]] = {}
    for outfit in outfits:
        for sku in outfit:
            with_style.setdefault(style_id[sku], set()).update(style_id[s] for s in outfit)
    unworn = [t for t in questions if t["answers"][t["correct"]] not in worn]
    answer_style = [style_id[t["answers"][t["correct"]]] for t in unworn]
    return {
        "answers_in_no_training_outfit": len(unworn),
        "with_a_colourway_worn": sum(s in styles_worn for s in answer_style),
        "with_a_colourway_worn_with_a_question_items_style": sum(
            bool(with_style.get(s, set()) & {style_id[q] for q in t["question"]})
            for s, t in zip(answer_style, unworn, strict=True)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--recall", action="store_true", help="also served cold Recall@10")
    arguments = parser.parse_args()
    version, index = active_version()
    options = index.scorer.options
    weights = np.array(
        [
            options["cooccurrence_weight"],
            options.get("second_order_weight", 0.0),
            options.get("overlap_weight", 0.0),
            *options.get("exposure_weights", [0.0] * 3),
        ]
    )
    outfits = read_training_outfits(arguments.split)
    style_number = {style: n for n, style in enumerate(sorted({style_of(s) for s in index.skus}))}
    style_id = {sku: style_number[style_of(sku)] for sku in index.skus}
    item = CoOccurrence.from_outfits([[index.row_of_sku[s] for s in o] for o in outfits], 1.0)
    style = CoOccurrence.from_outfits([[style_id[s] for s in o] for o in outfits], 1.0)
    served = index.sku_scorer(index.scorer)
    results: dict[str, object] = {
        "machine": machine(),
        "code": code_version(),
        "version": version.name,
        "weights": weights.tolist(),
    }
    for name in ("cold", "warm"):
        questions = json.loads((arguments.split / f"{name}_fitb.json").read_text())
        found = features(index, questions, item, style, style_id)
        as_served = float(
            np.mean(
                [
                    int(np.argmax(served(t["question"], t["answers"]))) == t["correct"]
                    for t in questions
                ]
            )
        )
        zero = np.zeros(len(SIGNALS))
        results[name] = {
            "questions": len(questions),
            "served": as_served,
            "rebuilt_by_item": fitb(found, weights, zero),
            "by_style": fitb(found, zero, weights),
            "content_alone": fitb(found, zero, zero),
            "style_beside_item": {lam: fitb(found, weights, lam * weights) for lam in BESIDE},
            **colourways(questions, outfits, style_id),
            "best_by_item": best(found, "item"),
            "best_by_style": best(found, "style"),
        }
        print(name, json.dumps(results[name]))
    if arguments.recall:
        questions = json.loads((arguments.split / "cold_fitb.json").read_text())
        results["cold_recall_at_10"] = recall_at_10(
            index, questions, item, style, style_id, weights
        )
        print("cold served R@10", results["cold_recall_at_10"])
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
