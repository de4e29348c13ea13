"""What signals beside the active version's score would add on the Mango split: an upper bound,
each signal's weight chosen on the split's own questions (a training could only do worse).

- Known items (warm FITB): the curated co-occurrence the served score blends in; the
  second-order one (the answer worn with items worn with the question's items: collaborative
  filtering's item-to-item walk, which alone answers more warm questions than direct
  co-occurrence); popularity (how often the answer is worn with anything).
- New arrivals (content alone, cold Recall@10 and FITB): a hub penalty, each candidate's score
  less its mean score against a sample of training outfits wanting its family (CSLS, the
  standard cure for items that rank high for every query).
- Where warm questions are lost: the served FITB by the evidence the outfits hold for the
  answer (in no training outfit; in some, never with a question item; worn with one), and
  what would still add there: the outfit-overlap vote (training outfits that hold the answer
  and several question items: near-copies of the held-out look), a popularity penalty (known
  items were pulled towards many partners in training), and the collection (Mango's image file
  names start with the catalog year, 2019 or 2023: 95% of outfits keep to one), on cold and
  warm questions.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/score_signals.py \\
        --split /tmp/mango-split [--results docs/score_signals.json]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import csv
import json
import math
import sys
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402
from embeddings.engine.evaluate import figure_text  # noqa: E402

DIRECT = (0.0, 0.5, 1.0, 2.0, 4.0)  # the weights a training tries
SECOND_ORDER = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
POPULARITY = (-0.4, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2)  # < 0: a penalty
OVERLAP = (0.0, 0.1, 0.3, 1.0)
COLLECTION = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
CV_REPEATS = 10  # random halvings of the warm questions
EVIDENCE = (  # what the training outfits hold of a warm question's answer
    "in no training outfit",
    "in training outfits, never with a question item",
    "worn with a question item",
)
HUB_PENALTY = (0.0, 0.25, 0.5, 0.75, 1.0)
HUB_SAMPLE = 40  # training outfits per family whose mean score is a candidate's hubness


def halving_estimate(right: np.ndarray, allowed: np.ndarray | None = None) -> float:
    """FITB on one half of the questions with the weights best on the other half (among the
    `allowed` ones), both ways, over CV_REPEATS random halvings: what a training choosing
    the weights on held-out outfits could expect. right[q, g]: question q is answered right
    with the grid's weights g."""
    allowed = np.ones(right.shape[1], dtype=bool) if allowed is None else allowed
    rng = np.random.default_rng(0)
    found = []
    for _ in range(CV_REPEATS):
        order = rng.permutation(len(right))
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        for chosen_on, scored_on in (halves, halves[::-1]):
            by_weights = np.where(allowed, right[chosen_on].mean(axis=0), -1.0)
            found.append(right[scored_on, int(np.argmax(by_weights))].mean())
    return float(np.mean(found))


def known_item_signals(index, questions: list[dict], outfits: list[set[str]]) -> dict:
    """Warm FITB of content + a·direct + b·second-order + c·popularity + e·overlap over the
    grid."""
    partners = index.scorer.partners
    holding: dict[str, list[set[str]]] = {}
    for outfit in outfits:
        for sku in outfit:
            holding.setdefault(sku, []).append(outfit)

    def overlap(question: list[str], sku: str) -> float:
        """log(1 + Σ over training outfits holding `sku` and ≥ 2 question items of the
        number held): a look stylists made before, in near-copies."""
        shared = (len(outfit.intersection(question)) for outfit in holding.get(sku, ()))
        return math.log1p(sum(n for n in shared if n >= 2))

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
                np.array([overlap(task["question"], sku) for sku in task["answers"]]),
                task["correct"],
            )
        )

    def accuracy(a: float, b: float, c: float, e: float = 0.0) -> float:
        return float(
            np.mean(
                [
                    int(np.argmax(s + a * d + b * t + c * p + e * o)) == right
                    for s, d, t, p, o, right in features
                ]
            )
        )

    weights = list(product(DIRECT, SECOND_ORDER, POPULARITY, OVERLAP))
    # right[q, g]: question q answered right with the grid's weights g
    right = np.array(
        [
            np.argmax(np.asarray(weights) @ np.stack([d, t, p, o]) + s, axis=1) == answer
            for s, d, t, p, o, answer in features
        ]
    )
    grid = [
        {"direct": a, "second_order": b, "popularity": c, "overlap": e, "fitb": float(fitb)}
        for (a, b, c, e), fitb in zip(weights, right.mean(axis=0), strict=True)
    ]
    names = ("direct", "second_order", "popularity", "overlap")

    def cross_validated(*signals: str) -> float:
        """The halving estimate with the signals not named at 0."""
        allowed = np.array(
            [all(w == 0 or n in signals for n, w in zip(names, g, strict=True)) for g in weights]
        )
        return halving_estimate(right, allowed)

    def best(**fixed: float) -> dict:
        return max(
            (g for g in grid if all(g[k] == v for k, v in fixed.items())),
            key=lambda g: g["fitb"],
        )

    options = index.scorer.options
    served = index.sku_scorer(index.scorer)
    return {
        "questions": len(questions),
        "content_alone": accuracy(0, 0, 0),
        "served_blend": float(
            np.mean(
                [
                    int(np.argmax(served(t["question"], t["answers"]))) == t["correct"]
                    for t in questions
                ]
            )
        ),
        "served_weight": options["cooccurrence_weight"],
        "served_second_order_weight": options.get("second_order_weight", 0.0),
        "served_overlap_weight": options.get("overlap_weight", 0.0),
        "second_order_then_content": accuracy(0, 1000.0, 0),
        "best_direct_only": best(second_order=0.0, popularity=0.0, overlap=0.0),
        "best_without_popularity": best(popularity=0.0, overlap=0.0),
        "best_without_second_order": best(second_order=0.0, overlap=0.0),
        "best_direct_and_overlap": best(second_order=0.0, popularity=0.0),
        "best_of_all": best(),
        "cross_validated": {
            "direct": cross_validated("direct"),
            "direct_and_second_order": cross_validated("direct", "second_order"),
            "direct_and_overlap": cross_validated("direct", "overlap"),
            "direct_second_order_and_overlap": cross_validated("direct", "second_order", "overlap"),
            "all": cross_validated(*names),
        },
    }


def warm_by_evidence(index, questions: list[dict], outfits: list[set[str]]) -> list[dict]:
    """Served and content-alone warm FITB by what the training outfits hold of the answer."""
    served = index.sku_scorer(index.scorer)
    content = index.sku_scorer(index.scorer.content_only())
    worn = {sku for outfit in outfits for sku in outfit}
    groups: dict[str, list[tuple[bool, bool]]] = {group: [] for group in EVIDENCE}
    for task in questions:
        answer = task["answers"][task["correct"]]
        if answer not in worn:
            group = EVIDENCE[0]
        elif any(answer in outfit and outfit.intersection(task["question"]) for outfit in outfits):
            group = EVIDENCE[2]
        else:
            group = EVIDENCE[1]
        right = task["correct"]
        groups[group].append(
            (
                int(np.argmax(served(task["question"], task["answers"]))) == right,
                int(np.argmax(content(task["question"], task["answers"]))) == right,
            )
        )
    return [
        {
            "answer": group,
            "questions": len(found),
            "served": float(np.mean([s for s, _ in found])) if found else None,
            "content_alone": float(np.mean([c for _, c in found])) if found else None,
        }
        for group, found in groups.items()
    ]


def catalog_years(products_csv: Path) -> dict[str, str]:
    """Each Mango product's catalog year, from its image file name (images/2019_…)."""
    with products_csv.open(newline="") as handle:
        return {
            row["cod_modelo_color"]: Path(row["des_filename"]).name.split("_")[0]
            for row in csv.DictReader(handle)
        }


def collection_signal(index, questions: list[dict], year: dict[str, str]) -> dict:
    """Served FITB + w · the share of question items of the answer's catalog year, and how far
    the answers keep to the question's year."""
    served = index.sku_scorer(index.scorer)
    features, right_kept, wrong_kept, wrong = [], 0, 0, 0
    for task in questions:
        shares = np.array(
            [
                np.mean([year[sku] == year[item] for item in task["question"]])
                for sku in task["answers"]
            ]
        )
        features.append((np.asarray(served(task["question"], task["answers"])), shares))
        right_kept += shares[task["correct"]] >= 0.5
        others = np.delete(shares, task["correct"])
        wrong_kept += int((others >= 0.5).sum())
        wrong += len(others)
    return {
        "questions": len(questions),
        "answer_of_the_question_year": right_kept / len(questions),
        "wrong_answers_of_the_question_year": wrong_kept / wrong,
        "fitb_by_weight": [
            {
                "weight": w,
                "fitb": float(
                    np.mean(
                        [
                            int(np.argmax(s + w * m)) == task["correct"]
                            for (s, m), task in zip(features, questions, strict=True)
                        ]
                    )
                ),
            }
            for w in COLLECTION
        ],
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
    outfits = read_training_outfits(split)
    rng = np.random.default_rng(0)
    hubness: dict[str, float] = {}
    for category, skus in members.items():
        wanting = [
            [sku for sku in outfit if category_of[sku] != category]
            for outfit in outfits
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
    parser.add_argument(
        "--products",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "mango" / "products.csv",
        help="the Mango products.csv, for each product's catalog year",
    )
    arguments = parser.parse_args()
    if not arguments.products.is_file():
        raise SystemExit(f"{arguments.products} not found: the Mango data set is needed.")
    version, index = active_version()

    def questions(name: str) -> list[dict]:
        return json.loads((arguments.split / f"{name}_fitb.json").read_text())

    outfits = [set(outfit) for outfit in read_training_outfits(arguments.split)]
    warm = known_item_signals(index, questions("warm"), outfits)
    evidence = warm_by_evidence(index, questions("warm"), outfits)
    year = catalog_years(arguments.products)
    collection = {
        name: collection_signal(index, questions(name), year) for name in ("cold", "warm")
    }
    cold = hub_penalty(index, questions("cold"), arguments.split)
    print(f"version {version.name} ({index.scorer.kind}); warm, {warm['questions']} questions:")
    for key in ("content_alone", "served_blend", "second_order_then_content"):
        print(f"  {key:28} {warm[key]:.3f}")
    for key in (
        "best_direct_only",
        "best_without_popularity",
        "best_without_second_order",
        "best_direct_and_overlap",
        "best_of_all",
    ):
        g = warm[key]
        print(
            f"  {key:28} {g['fitb']:.3f}  (direct {g['direct']}, second order "
            f"{g['second_order']}, popularity {g['popularity']}, overlap {g['overlap']})"
        )
    print(
        "  weights chosen on half the questions, scored on the other: "
        + ", ".join(f"{k} {v:.3f}" for k, v in warm["cross_validated"].items())
    )
    print("warm, by what the training outfits hold of the answer:")
    for row in evidence:
        print(
            f"  {row['answer']:48} {row['questions']:4} questions  served "
            f"{figure_text(row['served'])}  content alone {figure_text(row['content_alone'])}"
        )
    for name, found in collection.items():
        print(
            f"{name}, the catalog year: answer of the question's year "
            f"{found['answer_of_the_question_year']:.3f}, wrong answers "
            f"{found['wrong_answers_of_the_question_year']:.3f}; served FITB + w · same year: "
            + ", ".join(f"{g['weight']}: {g['fitb']:.3f}" for g in found["fitb_by_weight"])
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
                "warm_by_evidence": evidence,
                "catalog_year": collection,
                "cold_hub_penalty": cold,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
