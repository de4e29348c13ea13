"""The transfer-learning study on the Mango split: a backbone with no pretraining (random
weights: no transfer) against the backbone pretrained contrastively on image-caption pairs
(the source domain), each with a compatibility head fine-tuned on 10%, 30% and 100% of the
training outfits. Reports cold and warm FITB and AUC of the learned space (no co-occurrence:
that is not transfer), FITB after every epoch, and the epochs needed to reach 95% of the final
FITB; writes a table (stdout) and a plot (SVG).

    .venv/bin/python benchmarks/transfer_study.py \\
        --backbone var/backbones/outfits-tiny.safetensors \\
        [--split var/mango-split] [--epochs 30] [--plot docs/transfer_study.svg]
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.backbone import create_untrained_backbone, load_backbone  # noqa: E402
from embeddings.encode import encode_items  # noqa: E402
from embeddings.evaluate import (  # noqa: E402
    evaluate_tasks,
    read_compatibility_tasks,
    read_fitb_tasks,
)
from embeddings.train import HeadTrainingConfig, project, train_compatibility_head  # noqa: E402

MANGO = ROOT.parent / "shared" / "datasets" / "mango"
FRACTIONS = (0.1, 0.3, 1.0)
COLOURS = {"no transfer": "#b42318", "pretrained": "#1a5fb4"}
DASHES = {0.1: "2,4", 0.3: "8,4", 1.0: ""}


def load_catalog(data: Path):
    """SKUs, image paths, titles (as the importer makes them) and families of Mango."""
    with (data / "products.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    titles = [
        f"{r['des_agrup_color_eng']} {r['des_product_family']}".strip().capitalize() for r in rows
    ]
    return (
        [r["cod_modelo_color"] for r in rows],
        [data / r["des_filename"] for r in rows],
        titles,
        [r["des_product_family"] for r in rows],
    )


def epochs_to(fraction_of_final: float, curve: list[float]) -> int:
    target = fraction_of_final * curve[-1]
    return next(epoch for epoch, value in enumerate(curve, start=1) if value >= target)


def svg_plot(curves: dict[tuple[str, float], list[float]], path: Path, title: str) -> None:
    """A small line chart of warm+cold FITB per epoch; no plotting library needed."""
    width, height, left, bottom = 760, 380, 50, 40
    epochs = max(len(c) for c in curves.values())
    low = min(min(c) for c in curves.values()) - 0.02
    high = max(max(c) for c in curves.values()) + 0.02

    def x(epoch: int) -> float:
        return left + (width - left - 230) * (epoch - 1) / max(1, epochs - 1)

    def y(value: float) -> float:
        return height - bottom - (height - bottom - 30) * (value - low) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="18" font-size="13">{title}</text>',
        f'<line x1="{left}" y1="{y(low)}" x2="{x(epochs)}" y2="{y(low)}" stroke="#999"/>',
        f'<line x1="{left}" y1="{y(low)}" x2="{left}" y2="{y(high)}" stroke="#999"/>',
        f'<text x="{x(epochs) / 2}" y="{height - 8}">epoch</text>',
    ]
    for tick in np.linspace(low, high, 5):
        parts.append(f'<text x="8" y="{y(tick) + 4}">{tick:.2f}</text>')
    for epoch in range(1, epochs + 1, max(1, epochs // 6)):
        parts.append(f'<text x="{x(epoch) - 4}" y="{y(low) + 16}">{epoch}</text>')
    for row, ((arm, fraction), curve) in enumerate(sorted(curves.items())):
        points = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in enumerate(curve, start=1))
        parts.append(
            f'<polyline fill="none" stroke="{COLOURS[arm]}" stroke-width="2" '
            f'stroke-dasharray="{DASHES[fraction]}" points="{points}"/>'
        )
        legend_y = 40 + 16 * row
        parts.append(
            f'<line x1="{width - 215}" y1="{legend_y}" x2="{width - 190}" '
            f'y2="{legend_y}" stroke="{COLOURS[arm]}" stroke-width="2" '
            f'stroke-dasharray="{DASHES[fraction]}"/>'
        )
        parts.append(
            f'<text x="{width - 185}" y="{legend_y + 4}">{arm}, {fraction:.0%} outfits</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbone", type=Path, required=True, help="the pretrained offline backbone checkpoint"
    )
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "transfer_study.svg")
    parser.add_argument("--results", type=Path, default=None, help="also write JSON here")
    arguments = parser.parse_args()

    skus, images, titles, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    codes = np.unique(families, return_inverse=True)[1]
    outfits: dict[str, list[int]] = {}
    with (arguments.split / "train_outfits.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            outfits.setdefault(row["outfit_id"], []).append(row_of[row["sku"]])
    train = list(outfits.values())
    tasks = {
        split: (
            read_fitb_tasks(arguments.split / f"{split}_fitb.json"),
            read_compatibility_tasks(arguments.split / f"{split}_compat.txt"),
        )
        for split in ("cold", "warm")
    }

    arms = {
        "no transfer": lambda: create_untrained_backbone(seed=0),
        "pretrained": lambda: load_backbone("outfits-tiny", str(arguments.backbone)),
    }
    results, curves = [], {}
    for arm, make_backbone in arms.items():
        started = time.perf_counter()
        item_vectors = encode_items(make_backbone(), images, titles)
        print(
            f"# {arm}: embedded {len(skus)} items in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        for fraction in FRACTIONS:
            rng = np.random.default_rng(0)
            subset = [train[i] for i in rng.permutation(len(train))[: round(fraction * len(train))]]
            curve: list[float] = []

            def record(head, epoch, curve=curve, item_vectors=item_vectors) -> None:
                vectors = dict(zip(skus, project(head, item_vectors), strict=True))
                curve.append(
                    np.mean(
                        [
                            evaluate_tasks(vectors, tasks[s][0]).fitb_accuracy
                            for s in ("cold", "warm")
                        ]
                    )
                )

            head, _ = train_compatibility_head(
                item_vectors,
                subset,
                codes,
                HeadTrainingConfig(epochs=arguments.epochs),
                after_epoch=record,
            )
            vectors = dict(zip(skus, project(head, item_vectors), strict=True))
            scores = {s: evaluate_tasks(vectors, *tasks[s]) for s in ("cold", "warm")}
            curves[(arm, fraction)] = curve
            results.append(
                {
                    "arm": arm,
                    "outfits": fraction,
                    "outfit_count": len(subset),
                    "cold_fitb": scores["cold"].fitb_accuracy,
                    "warm_fitb": scores["warm"].fitb_accuracy,
                    "cold_auc": scores["cold"].compatibility_auc,
                    "warm_auc": scores["warm"].compatibility_auc,
                    "epochs_to_95": epochs_to(0.95, curve),
                    "best_epoch": int(np.argmax(curve)) + 1,
                }
            )
            print(json.dumps(results[-1]), file=sys.stderr)
    print(
        "| backbone | training outfits | cold FITB | warm FITB | cold AUC | warm AUC | "
        "epochs to 95% of final FITB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['arm']} | {r['outfits']:.0%} ({r['outfit_count']:,}) | {r['cold_fitb']:.3f} "
            f"| {r['warm_fitb']:.3f} | {r['cold_auc']:.3f} | {r['warm_auc']:.3f} "
            f"| {r['epochs_to_95']} |"
        )
    svg_plot(
        curves,
        arguments.plot,
        "Mean of cold and warm FITB after each epoch (learned space, no co-occurrence)",
    )
    if arguments.results:
        arguments.results.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
