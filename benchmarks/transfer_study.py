"""The transfer-learning study on the Mango split: the same model trained from scratch (the
backbone at random initialisation: no source domain) against the backbone pretrained
contrastively on image-caption pairs (the source domain), each fine-tuned the same way (type-
aware head, optionally the last image blocks) on 10%, 30% and 100% of the training outfits,
with several seeds. Reports cold and warm FITB and AUC of the learned space (no
co-occurrence: that is not transfer), FITB after every epoch, epochs to reach 95% of the final
FITB, and epochs the pretrained model needs to match the from-scratch model's final FITB;
writes a table (stdout), a plot (SVG) and the raw results (JSON).

    .venv/bin/python benchmarks/transfer_study.py \\
        --backbone var/backbones/outfits-tiny.safetensors \\
        [--split var/mango-split] [--epochs 30] [--seeds 0 1 2] [--unfreeze-blocks 0] \\
        [--plot docs/transfer_study.svg] [--results docs/transfer_study.json]
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

from embeddings.engine.backbone import (  # noqa: E402  (after the path is set)
    ImageTowerTop,
    create_untrained_backbone,
    load_backbone,
)
from embeddings.engine.encode import encode_items, encode_trunk_tokens  # noqa: E402
from embeddings.engine.evaluate import (  # noqa: E402
    evaluate_tasks,
    read_compatibility_tasks,
    read_fitb_tasks,
)
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.space import CompatibilitySpace  # noqa: E402
from embeddings.engine.text import describe  # noqa: E402
from embeddings.engine.train import ItemEncoder, trained_space  # noqa: E402

MANGO = ROOT.parent / "shared" / "datasets" / "mango"
FRACTIONS = (0.1, 0.3, 1.0)
ARMS = ("from scratch", "pretrained")
COLOURS = {"from scratch": "#b42318", "pretrained": "#1a5fb4"}
DASHES = {0.1: "2,4", 0.3: "8,4", 1.0: ""}
# The columns `manage.py import_catalog` maps for Mango (README); the rest are attributes.
MAPPED = {"cod_modelo_color", "des_filename", "des_product_family", "des_product_category"}


def load_catalog(data: Path):
    """SKUs, image paths, item texts (as the imported products describe themselves) and
    families of the Mango catalog; exits with a message when the data set is absent."""
    if not (data / "products.csv").is_file():
        raise SystemExit(f"The Mango data set is not at {data}.")
    with (data / "products.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = []
    for row in rows:
        colour, family = row["des_agrup_color_eng"], row["des_product_family"]
        attributes = {k: v for k, v in row.items() if k not in MAPPED | {"des_agrup_color_eng"}}
        title = f"{colour} {family}".strip().capitalize()  # the importer's default title
        texts.append(describe(title, colour, family, attributes))
    return (
        [r["cod_modelo_color"] for r in rows],
        [data / r["des_filename"] for r in rows],
        texts,
        [r["des_product_family"] for r in rows],
    )


def load_split(split: Path, row_of: dict[str, int]):
    """The split's training outfits (as catalog rows) and its cold and warm tasks, each
    (FITB questions, compatibility lines)."""
    outfits: dict[str, list[int]] = {}
    with (split / "train_outfits.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            outfits.setdefault(row["outfit_id"], []).append(row_of[row["sku"]])
    tasks = {
        name: (
            read_fitb_tasks(split / f"{name}_fitb.json"),
            read_compatibility_tasks(split / f"{name}_compat.txt"),
        )
        for name in ("cold", "warm")
    }
    return list(outfits.values()), tasks


def family_members(skus, families) -> dict[str, list[str]]:
    """Each family's SKUs: what Recall@K ranks a right answer among."""
    members: dict[str, list[str]] = {}
    for sku, family in zip(skus, families, strict=True):
        members.setdefault(family, []).append(sku)
    return members


def split_figures(scorer, tasks, members=None) -> dict[str, float]:
    """Cold and warm FITB and AUC with their standard errors (and Recall@K, given each family's
    `members`), as the studies' tables report them."""
    found: dict[str, float] = {}
    for split in ("cold", "warm"):
        results = evaluate_tasks(scorer, *tasks[split], members)
        found |= {
            f"{split}_fitb": results.fitb_accuracy,
            f"{split}_fitb_se": results.fitb_standard_error,
            f"{split}_auc": results.compatibility_auc,
            f"{split}_auc_se": results.compatibility_auc_standard_error,
        }
        for k, value in (results.recall_at or {}).items():
            found[f"{split}_recall_at_{k}"] = value
    return found


def epochs_to_reach(target: float, curve: list[float]) -> int | None:
    return next((epoch for epoch, value in enumerate(curve, start=1) if value >= target), None)


def svg_plot(curves: dict[tuple[str, float], list[float]], path: Path, title: str) -> None:
    """A small line chart of the mean curves; no plotting library needed."""
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
        f'<rect width="{width}" height="{height}" fill="white"/>',
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--unfreeze-blocks", type=int, default=0)
    parser.add_argument("--tuned-epochs", type=int, default=TrainingOptions.tuned_epochs)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "transfer_study.svg")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "transfer_study.json")
    arguments = parser.parse_args()

    skus, images, texts, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    category_names, codes = np.unique(families, return_inverse=True)
    train, tasks = load_split(arguments.split, row_of)

    backbones = {
        "from scratch": lambda: create_untrained_backbone(seed=0),
        "pretrained": lambda: load_backbone("outfits-tiny", str(arguments.backbone)),
    }
    results, curves = [], {}
    for arm in ARMS:
        started = time.perf_counter()
        backbone = backbones[arm]()
        item_vectors = encode_items(backbone, images, texts)
        tokens = None
        if arguments.unfreeze_blocks:
            depth = len(backbone.model.visual.transformer.resblocks)
            frozen = depth - arguments.unfreeze_blocks
            tokens = encode_trunk_tokens(backbone, images, frozen)
        print(
            f"# {arm}: embedded {len(skus)} items in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        for fraction in FRACTIONS:
            for seed in arguments.seeds:
                rng = np.random.default_rng(seed)
                count = round(fraction * len(train))
                subset = [train[i] for i in rng.permutation(len(train))[:count]]
                items = ItemEncoder(item_vectors)
                if tokens is not None:
                    top = ImageTowerTop(backbone.model.visual, arguments.unfreeze_blocks)
                    items = ItemEncoder(item_vectors, top, tokens)
                curve: list[float] = []

                def content_of(space: CompatibilitySpace) -> SkuScorer:
                    scorer = TypeAwareScorer(space.pair_weights)
                    return SkuScorer(scorer, space.vectors, space.categories, row_of)

                def record(head, epoch, curve=curve, items=items, subset=subset) -> None:
                    space = trained_space(head, items, codes, category_names.tolist(), subset)
                    scorer = content_of(space)
                    curve.append(
                        float(
                            np.mean(
                                [
                                    evaluate_tasks(scorer, tasks[s][0]).fitb_accuracy
                                    for s in ("cold", "warm")
                                ]
                            )
                        )
                    )

                started = time.perf_counter()
                fitted = fit_space(
                    TrainingCatalog(skus, list(families), items, train),
                    subset,
                    TrainingOptions(
                        epochs=arguments.epochs, seed=seed, tuned_epochs=arguments.tuned_epochs
                    ),
                    after_epoch=record,
                )
                scorer = content_of(fitted.space)
                scores = {s: evaluate_tasks(scorer, *tasks[s]) for s in ("cold", "warm")}
                results.append(
                    {
                        "arm": arm,
                        "fraction": fraction,
                        "seed": seed,
                        "outfit_count": count,
                        "seconds": round(time.perf_counter() - started, 1),
                        "cold_fitb": scores["cold"].fitb_accuracy,
                        "warm_fitb": scores["warm"].fitb_accuracy,
                        "cold_auc": scores["cold"].compatibility_auc,
                        "warm_auc": scores["warm"].compatibility_auc,
                        "curve": curve,
                    }
                )
                print(json.dumps({k: v for k, v in results[-1].items() if k != "curve"}))

    for arm in ARMS:
        for fraction in FRACTIONS:
            runs = [r["curve"] for r in results if r["arm"] == arm and r["fraction"] == fraction]
            curves[(arm, fraction)] = np.mean(runs, axis=0).tolist()
    print(
        "\n| backbone | training outfits | cold FITB | warm FITB | cold AUC | warm AUC | "
        "epochs to 95% of final FITB | epochs to the from-scratch final FITB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm in ARMS:
        for fraction in FRACTIONS:
            count = next(r["outfit_count"] for r in results if r["fraction"] == fraction)
            curve = curves[(arm, fraction)]
            scratch_final = curves[("from scratch", fraction)][-1]
            to_scratch = epochs_to_reach(scratch_final, curve)

            def spread(key: str, arm: str = arm, fraction: float = fraction) -> str:
                values = [r[key] for r in results if r["arm"] == arm and r["fraction"] == fraction]
                return f"{np.mean(values):.3f} ± {np.std(values):.3f}"

            print(
                f"| {arm} | {fraction:.0%} ({count:,}) | {spread('cold_fitb')} "
                f"| {spread('warm_fitb')} | {spread('cold_auc')} | {spread('warm_auc')} "
                f"| {epochs_to_reach(0.95 * curve[-1], curve)} "
                f"| {to_scratch if to_scratch is not None else 'never'} |"
            )
    seeds = len(arguments.seeds)
    svg_plot(
        curves,
        arguments.plot,
        f"Mean of cold and warm FITB after each epoch (learned space; mean of {seeds} seeds)",
    )
    arguments.results.write_text(
        json.dumps({"arguments": vars(arguments), "runs": results}, default=str)
    )
    print(f"\nplot: {arguments.plot}; results: {arguments.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
