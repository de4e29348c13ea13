"""Would a learned vector per known item, beside its content vector, lift warm FITB? (issue 21)

A hybrid of content and item identity, as LightFM does: score(a, c) = content(a, c) +
u_a · u_c (+ b_c), where u and b are learned for the items of the training outfits only (a new
arrival has none: its content speaks alone). The active version's type-aware content score is
held fixed while u and b learn, so they learn what it misses (BPR on the training outfits'
pairs, each against an item of the positive's family drawn from the whole catalog, as the
split's wrong answers are). The residual is then added to the served score (and to content alone)
with a weight chosen on one half of the warm questions and scored on the other
(score_signals.halving_estimate). Measured: docs/model.md, "a learned vector per known item".

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/item_residuals.py \\
        --split /tmp/mango-split [--results docs/item_residuals.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version, code_version, machine  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402
from benchmarks.score_signals import halving_estimate  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def content_parts(index):
    """The type-aware content score as tensors: item vectors, each item's category code, the
    per-dimension weight of every (category, category) and each category's query offset."""
    import torch

    pairs = getattr(index.scorer, "base", index.scorer)
    names = sorted(set(index.categories))
    code = {name: i for i, name in enumerate(names)}
    vectors = np.asarray(index.vectors, dtype=np.float32)
    dim = vectors.shape[1]
    table = np.ones((len(names), len(names), dim), dtype=np.float32)
    offsets = np.zeros((len(names), dim), dtype=np.float32)
    for a in names:
        for b in names:
            weights = pairs.pair_weights.between(a, b)
            if weights is not None:
                table[code[a], code[b]] = weights
        offset = pairs.centres.offset(a)
        if offset is not None:
            offsets[code[a]] = offset
    categories = np.array([code[c] for c in index.categories])
    return (
        torch.from_numpy(vectors),
        torch.from_numpy(categories),
        torch.from_numpy(table),
        torch.from_numpy(offsets),
    )


def learn_residuals(
    index,
    outfits: list[list[str]],
    dim: int,
    epochs: int,
    decay: float,
    bias: bool,
    seed: int,
    hybrid: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    row_of = index.row_of_sku
    vectors, categories, table, offsets = content_parts(index)
    rows = [[row_of[s] for s in outfit if s in row_of] for outfit in outfits]
    known = np.zeros(len(row_of), dtype=bool)
    for outfit in rows:
        known[outfit] = True
    by_category: dict[int, np.ndarray] = {}
    cats = categories.numpy()
    for c in np.unique(cats):
        by_category[int(c)] = np.flatnonzero(cats == c)
    anchors, positives = [], []
    for outfit in rows:
        for a in outfit:
            for p in outfit:
                if a != p:
                    anchors.append(a)
                    positives.append(p)
    positive_categories = cats[np.asarray(positives)]
    anchors_t = torch.tensor(anchors)
    positives_t = torch.tensor(positives)
    mask = torch.from_numpy(known).float().unsqueeze(1)
    u = torch.nn.Parameter(0.01 * torch.randn(len(row_of), dim))
    b = torch.nn.Parameter(torch.zeros(len(row_of)))
    optimiser = torch.optim.Adam([u, b] if bias else [u], lr=0.01)

    def score(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        query = vectors[a] * table[categories[a], categories[c]] - offsets[categories[c]]
        content = (query * vectors[c]).sum(1) if hybrid else 0.0
        ua, uc = u[a] * mask[a], u[c] * mask[c]
        residual = (ua * uc).sum(1)
        if bias:
            residual = residual + b[c] * mask[c, 0]
        return content + residual

    for epoch in range(epochs):
        drawn = np.empty(len(positives), dtype=np.int64)
        for c, members in by_category.items():
            where = positive_categories == c
            drawn[where] = members[rng.integers(len(members), size=int(where.sum()))]
        negatives = torch.from_numpy(drawn)
        order = torch.randperm(len(anchors))
        total = 0.0
        for start in range(0, len(order), 4096):
            batch = order[start : start + 4096]
            a, p, n = anchors_t[batch], positives_t[batch], negatives[batch]
            loss = torch.nn.functional.softplus(score(a, n) - score(a, p)).mean()
            loss = (
                loss + decay * ((u[a] ** 2).sum(1) + (u[p] ** 2).sum(1) + (u[n] ** 2).sum(1)).mean()
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss) * len(batch)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1}: loss {total / len(anchors):.4f}", flush=True)
    with torch.no_grad():
        return (u * mask).numpy(), (b * mask[:, 0]).numpy() if bias else np.zeros(len(row_of))


def with_residual(base: list[np.ndarray], extra: list[np.ndarray], correct: list[int]) -> dict:
    """FITB of `base` alone, + `extra` at its best weight, and at the weight chosen on halves."""
    right = np.array(
        [
            [int(np.argmax(s + w * r)) == c for w in WEIGHTS]
            for s, r, c in zip(base, extra, correct, strict=True)
        ]
    )
    by_weight = right.mean(axis=0)
    return {
        "alone": float(by_weight[0]),
        "best": float(by_weight.max()),
        "best_weight": WEIGHTS[int(np.argmax(by_weight))],
        "halves": halving_estimate(right),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--dims", default="32")
    parser.add_argument("--decays", default="0.001,0.01")
    parser.add_argument("--epochs", type=int, default=30)
    arguments = parser.parse_args()

    _, index = active_version()
    outfits = read_training_outfits(arguments.split)
    questions = json.loads((arguments.split / "warm_fitb.json").read_text())
    row_of = index.row_of_sku
    served = index.sku_scorer(index.scorer)
    content = index.sku_scorer(index.scorer.content_only())
    served_scores = [np.asarray(served(q["question"], q["answers"])) for q in questions]
    content_scores = [np.asarray(content(q["question"], q["answers"])) for q in questions]
    correct = [q["correct"] for q in questions]
    worn = {s for outfit in outfits for s in outfit}
    answer_known = np.array([q["answers"][q["correct"]] in worn for q in questions])
    results = []
    for dim in map(int, arguments.dims.split(",")):
        for decay in map(float, arguments.decays.split(",")):
            for bias, hybrid in ((False, True), (True, True), (False, False)):
                started = time.perf_counter()
                u, b = learn_residuals(
                    index, outfits, dim, arguments.epochs, decay, bias, 0, hybrid
                )
                seconds = time.perf_counter() - started
                residual = []
                for q in questions:
                    anchors = [row_of[s] for s in q["question"]]
                    rows = [row_of[s] for s in q["answers"]]
                    residual.append(u[rows] @ u[anchors].mean(axis=0) + b[rows])
                found = {
                    "dim": dim,
                    "decay": decay,
                    "bias": bias,
                    "hybrid": hybrid,
                    "seconds": round(seconds, 1),
                    "served": with_residual(served_scores, residual, correct),
                    "content": with_residual(content_scores, residual, correct),
                }
                for known in (True, False):
                    pick = np.flatnonzero(answer_known == known)
                    found[f"served_answer_known_{known}"] = with_residual(
                        [served_scores[i] for i in pick],
                        [residual[i] for i in pick],
                        [correct[i] for i in pick],
                    )
                print(json.dumps(found), flush=True)
                results.append(found)
    if arguments.results:
        arguments.results.write_text(
            json.dumps({"machine": machine(), "code": code_version(), "results": results}, indent=1)
            + "\n"
        )


if __name__ == "__main__":
    main()
