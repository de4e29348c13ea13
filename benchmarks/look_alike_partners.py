"""Would "stylists wore this with things like that" help? The look-alike partner signal on the
Mango split: for a candidate and a question item, the closest cosine between the candidate
and the item's curated partners of the candidate's category (forward: a new arrival that
looks like what the item was worn with), or between the item and the candidate's partners of
the item's category (reverse), averaged over the question's items. Each signal set's weights
chosen on half the questions and scored on the other (10 halvings), beside the served
blend's direct co-occurrence.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/look_alike_partners.py \\
        --split /tmp/mango-split [--vectors space|backbone]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce"). `--vectors backbone`: the look-alike cosine of the backbone's own image
vectors instead of the trained space's.
"""

import argparse
import json
import sys
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402

GRID = {
    "direct": (0.0, 0.5, 1.0, 2.0, 4.0),
    "forward": (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    "reverse": (0.0, 0.25, 0.5, 1.0, 2.0),
}
SIGNAL_SETS = (
    ("direct",),
    ("forward",),
    ("reverse",),
    ("direct", "forward"),
    ("direct", "reverse"),
    ("direct", "forward", "reverse"),
)
HALVINGS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--vectors", choices=("space", "backbone"), default="space")
    arguments = parser.parse_args()
    version, index = active_version()
    partners = index.scorer.partners
    row_of = index.row_of_sku
    categories = np.asarray(index.categories)
    if arguments.vectors == "space":
        vectors = np.array(index.vectors, dtype=np.float32)
    else:  # the backbone's image half, as the version stored it (rows as the index's)
        from django.conf import settings

        directory = Path(settings.OUTFITS_MODEL_DIR) / version.directory
        stored = np.load(directory / "item_vectors.npy").astype(np.float32)
        vectors = stored[:, : stored.shape[1] // 2]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    content = index.sku_scorer(index.scorer.content_only())
    served_score = index.sku_scorer(index.scorer)

    def closest(item: int, other: int) -> float:
        """The closest cosine between `other` and `item`'s partners of `other`'s category."""
        like = [p for p in partners.get(item, {}) if categories[p] == categories[other]]
        like = [p for p in like if p != other]
        return float((vectors[like] @ vectors[other]).max()) if like else 0.0

    weights = np.array(list(product(*GRID.values())))
    names = list(GRID)
    report = {"version": version.name, "vectors": arguments.vectors}
    for split in ("warm", "cold"):
        right, served_right = [], []
        for task in json.loads((arguments.split / f"{split}_fitb.json").read_text()):
            anchors = [row_of[sku] for sku in task["question"]]
            rows = [row_of[sku] for sku in task["answers"]]
            signals = np.stack(
                [
                    CoOccurrence(partners, 1.0).bonus(anchors, rows),
                    [np.mean([closest(a, c) for a in anchors]) for c in rows],
                    [np.mean([closest(c, a) for a in anchors]) for c in rows],
                ]
            )
            base = np.asarray(content(task["question"], task["answers"]))
            right.append(np.argmax(weights @ signals + base, axis=1) == task["correct"])
            served = served_score(task["question"], task["answers"])
            served_right.append(int(np.argmax(served)) == task["correct"])
        hits = np.array(right)  # [question, weights]
        rng = np.random.default_rng(0)
        found: dict[str, float] = {
            "content_alone": float(hits[:, 0].mean()),
            "served_blend": float(np.mean(served_right)),
        }
        for chosen in SIGNAL_SETS:
            allowed = np.array(
                [all(w == 0 or n in chosen for n, w in zip(names, g, strict=True)) for g in weights]
            )
            scored = []
            for _ in range(HALVINGS):
                order = rng.permutation(len(hits))
                halves = (order[: len(order) // 2], order[len(order) // 2 :])
                for on, off in (halves, halves[::-1]):
                    best = int(np.argmax(np.where(allowed, hits[on].mean(axis=0), -1.0)))
                    scored.append(hits[off, best].mean())
            found["+".join(chosen)] = float(np.mean(scored))
        report[split] = found
        print(
            f"{split}, {len(hits)} questions: "
            + ", ".join(f"{name} {value:.3f}" for name, value in found.items())
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
