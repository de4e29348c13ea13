"""Does the content model prefer items it was trained on? The cold FITB questions asked again
with their wrong answers swapped for known items of the same population.

The split makes new arrivals by lot: 15% of the products in at most 3 outfits. The other 85%
of those products are known items of the same population that differ from new arrivals only
in that training saw them. So each cold question (a new arrival's blank, three other new
arrivals as wrong answers) is asked again with three wrong answers drawn from that matched
pool, in the same family (several draws): what the score loses is what training exposure
alone buys a wrong answer. The warm questions whose answer is in no training outfit face known
wrong answers (two in three), and lose there.

Then a cure, probed on the same questions: where the served score reads an outfit whole, an
item in no training outfit gets 0 from the outfits' signals and loses to every known item the
walk reaches. With `--family-prior` it gets instead the mean of what they add to every known
item of its family with the same question items (missing evidence, not evidence of nothing):
served against that, on cold and warm FITB, cold Recall@10 and the matched questions. With
`--prior-cost`, what the prior would cost a request: the per-family sums of the three signals
over every known item the anchors reach, timed against the signals of the request's
candidates alone, on each question's anchors (medians, interleaved in one run).

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/exposure_bias.py \\
        --split /tmp/mango-split [--results docs/exposure_bias.json]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import (  # noqa: E402
    MANGO,
    NEW_ARRIVALS_FROM_AT_MOST,
    read_mango,
    read_training_outfits,
)
from benchmarks.transfer_study import family_members  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402
from embeddings.engine.scorers import OutfitScorer  # noqa: E402

DRAWS = 5  # matched wrong answers drawn per question


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
        "--data", type=Path, default=MANGO, help="the Mango data set (each product's rarity)"
    )
    parser.add_argument("--family-prior", action="store_true", help="probe the cure too")
    parser.add_argument("--prior-cost", action="store_true", help="time the cure per request")
    arguments = parser.parse_args()
    if not (arguments.data / "outfits.csv").is_file():
        raise SystemExit(f"The Mango data set is not at {arguments.data}: it is needed.")
    version, index = active_version()
    _, outfits = read_mango(arguments.data)
    in_outfits = Counter(sku for items in outfits.values() for sku in items)
    known = {sku for outfit in read_training_outfits(arguments.split) for sku in outfit}
    matched: dict[str, list[str]] = {}  # family -> known items as rare as new arrivals
    for sku, category in zip(index.skus, index.categories, strict=True):
        if sku in known and in_outfits[sku] <= NEW_ARRIVALS_FROM_AT_MOST:
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
    if arguments.family_prior:
        warm = json.loads((arguments.split / "warm_fitb.json").read_text())
        results["family_prior"] = family_prior(index, asked, warm)
        for name, found in results["family_prior"].items():
            print(f"family prior, {name:18} " + ", ".join(f"{k} {v:.3f}" for k, v in found.items()))
    if arguments.prior_cost:
        warm = json.loads((arguments.split / "warm_fitb.json").read_text())
        results["prior_cost"] = prior_cost(index, [t for t, _ in asked] + warm)
        print("family prior, per request: " + json.dumps(results["prior_cost"]))
    arguments.results.write_text(json.dumps(results, indent=1) + "\n")


def family_prior(index, asked: list, warm: list[dict]) -> dict:
    """Served and with the family prior: each item in no training outfit scored as its
    content plus the mean of what the outfits add to the known items of its family."""
    served = index.sku_scorer(index.scorer)
    content = index.sku_scorer(index.scorer.content_only())
    partners = index.scorer.partners
    members = family_members(index.skus, index.categories)

    def both(task: dict) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        pool = [sku for sku in members[task["category"]] if sku not in task["question"]]
        plain = np.asarray(served(task["question"], pool))
        alone = np.asarray(content(task["question"], pool))
        known = np.array([bool(partners.get(index.row_of_sku[sku])) for sku in pool])
        added = plain - alone
        prior = added[known].mean() if known.any() else 0.0
        return (
            {sku: at for at, sku in enumerate(pool)},
            plain,
            alone + np.where(known, added, prior),
        )

    found: dict[str, dict[str, list[float]]] = {
        name: {"served": [], "family_prior": []}
        for name in ("cold_fitb", "cold_recall_at_10", "cold_matched", "warm_fitb")
    }
    for task, draws in asked:
        at, *scores = both(task)
        answers = [at[sku] for sku in task["answers"]]
        right = answers[task["correct"]]
        for how, score in zip(("served", "family_prior"), scores, strict=True):
            found["cold_fitb"][how].append(int(np.argmax(score[answers])) == task["correct"])
            found["cold_recall_at_10"][how].append(int((score > score[right]).sum()) < 10)
            found["cold_matched"][how].append(
                np.mean([score[right] > score[[at[sku] for sku in d[1:]]].max() for d in draws])
            )
    for task in warm:
        at, *scores = both(task)
        answers = [at[sku] for sku in task["answers"]]
        for how, score in zip(("served", "family_prior"), scores, strict=True):
            found["warm_fitb"][how].append(int(np.argmax(score[answers])) == task["correct"])
    return {
        name: {how: float(np.mean(values)) for how, values in hows.items()}
        for name, hows in found.items()
    }


def family_sums(evidence: CoOccurrence, anchors: list[int], family: list[int]) -> np.ndarray:
    """(3, families): each signal summed over every item the anchors reach, by its family;
    divided by a family's known items it is the prior of an item of it no outfit holds.
    Plain lists in the loops: numpy's scalar indexing would cost more than the walk."""
    direct = [0.0] * (max(family) + 1)
    walk, overlap = direct.copy(), direct.copy()
    for anchor in anchors:
        for partner, count in evidence.partners.get(anchor, {}).items():
            direct[family[partner]] += math.log1p(count)
    worn = evidence._worn  # its cached table: what each item is worn with
    for anchor in anchors:
        for middle, together in evidence.partners.get(anchor, {}).items():
            vote = math.log1p(together) / math.log1p(worn[middle])
            for row, count in evidence.partners.get(middle, {}).items():
                walk[family[row]] += vote * math.log1p(count)
    held: Counter[int] = Counter()
    for anchor in set(anchors):
        held.update(evidence._holding.get(anchor, ()))
    total: Counter[int] = Counter()
    for number, count in held.items():
        if count >= 2:
            for row in evidence.outfits[number]:
                total[row] += count
    for row, value in total.items():
        overlap[family[row]] += math.log1p(value)
    return np.array([direct, walk, overlap]) / np.array([[len(anchors)], [len(anchors)], [1]])


def prior_cost(index, questions: list[dict]) -> dict:
    """Median ms per question of the signals of its answers alone, and of the family sums
    the prior needs, interleaved."""
    served = index.scorer
    pairs = served.base if isinstance(served, OutfitScorer) else served
    evidence: CoOccurrence = pairs.cooccurrence
    names = sorted(set(index.categories))
    family = [names.index(c) for c in index.categories]
    evidence.signals([0, 1], [2])  # its cached tables built before timing
    # The sums are the signals of every item of each family, summed: checked on a question.
    anchors = [index.row_of_sku[s] for s in questions[0]["question"]]
    each = evidence.signals(anchors, list(range(len(family))))[:3]  # the family sums' three
    of = np.array(family)
    expected = np.stack([each[:, of == f].sum(axis=1) for f in range(len(names))], axis=1)
    if not np.allclose(family_sums(evidence, anchors, family), expected, rtol=1e-4, atol=1e-4):
        raise SystemExit("the family sums disagree with the signals: the probe is wrong")
    plain, prior = [], []
    for task in questions:
        anchors = [index.row_of_sku[s] for s in task["question"]]
        answers = [index.row_of_sku[s] for s in task["answers"]]
        started = time.perf_counter()
        evidence.signals(anchors, answers)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        family_sums(evidence, anchors, family)
        prior.append(time.perf_counter() - started)
    return {
        "questions": len(questions),
        "signals_ms": 1000 * float(np.median(plain)),
        "family_sums_ms": 1000 * float(np.median(prior)),
        "ratio": float(np.median(prior) / np.median(plain)),
    }


if __name__ == "__main__":
    main()
