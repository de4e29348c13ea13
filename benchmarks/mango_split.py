"""The Mango validation split, the way a store meets it: some products that appear in at most
3 outfits become "new arrivals" and every outfit containing one is held out (cold); a share of
the other outfits is held out too (warm); the rest is for training.

    .venv/bin/python benchmarks/mango_split.py [--out var/mango-split] [--seed 0]

Writes train_outfits.csv (for `manage.py import_outfits`) and, for `manage.py evaluate`,
cold_fitb.json / cold_compat.txt (blanks are new arrivals; wrong answers are other new
arrivals of the same des_product_family) and warm_fitb.json / warm_compat.txt (blank anywhere;
wrong answers from the same family). Reads ../shared/datasets/mango; exits with a message if
it is absent.
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

from embeddings.engine.evaluate import make_tasks  # noqa: E402  (after the path is set)

MANGO = ROOT.parent / "shared" / "datasets" / "mango"
NEW_ARRIVALS_FROM_AT_MOST = 3  # outfits: new arrivals are drawn from products in so few


def read_mango(data: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The Mango data set's family of each product, and each outfit's products (each once,
    those of the catalog only)."""
    with (data / "products.csv").open(newline="") as handle:
        family_of = {
            row["cod_modelo_color"]: row["des_product_family"] for row in csv.DictReader(handle)
        }
    outfits: dict[str, list[str]] = {}
    with (data / "outfits.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["sku"] in family_of and row["sku"] not in outfits.setdefault(
                row["outfit_id"], []
            ):
                outfits[row["outfit_id"]].append(row["sku"])
    return family_of, outfits


def read_training_outfits(split: Path) -> list[list[str]]:
    """The training outfits a split wrote (its train_outfits.csv), each as its SKUs."""
    outfits: dict[str, list[str]] = {}
    with (split / "train_outfits.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            outfits.setdefault(row["outfit_id"], []).append(row["sku"])
    return list(outfits.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--new-arrival-share",
        type=float,
        default=0.15,
        help="share of the products in 1-3 outfits held out as new arrivals",
    )
    parser.add_argument(
        "--warm-share",
        type=float,
        default=0.08,
        help="share of the remaining outfits held out for warm evaluation",
    )
    arguments = parser.parse_args()
    if not (arguments.data / "outfits.csv").is_file():
        raise SystemExit(f"The Mango data set is not at {arguments.data}: nothing to split.")

    family_of, outfits = read_mango(arguments.data)
    appearances = Counter(sku for items in outfits.values() for sku in items)

    rng = np.random.default_rng(arguments.seed)
    rare = sorted(sku for sku, count in appearances.items() if count <= NEW_ARRIVALS_FROM_AT_MOST)
    new_arrivals = set(
        rng.choice(
            rare, size=round(len(rare) * arguments.new_arrival_share), replace=False
        ).tolist()
    )
    cold_ids = [i for i, items in outfits.items() if new_arrivals & set(items)]
    rest = [i for i in outfits if i not in set(cold_ids)]
    warm_ids = set(
        rng.choice(rest, size=round(len(rest) * arguments.warm_share), replace=False).tolist()
    )
    train_ids = [i for i in rest if i not in warm_ids]

    out = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train_outfits.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["outfit_id", "sku"])
        for outfit_id in train_ids:
            writer.writerows([outfit_id, sku] for sku in outfits[outfit_id])
    trained_on = {sku for i in train_ids for sku in outfits[i]}
    assert not trained_on & new_arrivals, "a new arrival leaked into training"

    for name, ids, pool in (
        ("cold", cold_ids, sorted(new_arrivals)),
        ("warm", sorted(warm_ids), None),
    ):
        fitb, compatibility = make_tasks(
            [outfits[i] for i in ids], family_of, rng, answer_pool=pool
        )
        (out / f"{name}_fitb.json").write_text(
            json.dumps(
                [
                    {
                        "question": list(t.question),
                        "answers": list(t.answers),
                        "correct": t.correct,
                        "blank_position": len(t.question) + 1,
                        "category": t.category,
                    }
                    for t in fitb
                ],
                indent=0,
            )
        )
        (out / f"{name}_compat.txt").write_text(
            "".join(f"{t.label} {' '.join(t.items)}\n" for t in compatibility)
        )
        print(
            f"{name}: {len(ids)} outfits, {len(fitb)} FITB questions, "
            f"{len(compatibility)} compatibility lines"
        )
    print(
        f"train: {len(train_ids)} outfits; new arrivals: {len(new_arrivals)} products "
        f"(of {len(rare)} in at most 3 outfits); files in {out}"
    )


if __name__ == "__main__":
    main()
