"""Transfer learning's fourth claim, robustness to real-world low-quality images, on the Mango
split: the backbone from scratch and the pretrained one (as in transfer_study.py, backbone
frozen, type-aware head trained on clean catalog images), then every evaluation item's image
degraded (engine/degrade.py: heavy JPEG, blur, low resolution, a phone photo on a surface) and
re-embedded; the training items stay clean. Reports cold and warm FITB and AUC of the learned
space (no co-occurrence) with standard errors, and what each degradation costs each backbone;
writes two plots (SVG) and the raw results (JSON).

    .venv/bin/python benchmarks/robustness_study.py \\
        --backbone var/backbones/outfits-tiny.safetensors [--split var/mango-split] \\
        [--epochs 30] [--seed 0] [--plot-prefix docs/robustness] [--results FILE]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import (  # noqa: E402
    MANGO,
    load_catalog,
    load_split,
    split_figures,
)
from embeddings.engine.backbone import create_untrained_backbone, load_backbone  # noqa: E402
from embeddings.engine.degrade import DEGRADATIONS, degrade_files  # noqa: E402
from embeddings.engine.encode import encode_images, encode_items  # noqa: E402
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.train import ItemEncoder, trained_space  # noqa: E402

ARMS = ("from scratch", "pretrained")
PALETTE = ("#b42318", "#1a5fb4", "#2f855a", "#b7791f")  # one per arm, in the table's order
CLEAN = "clean"


def bars_svg(values: dict[str, dict[str, float]], title: str, path: Path) -> None:
    """Grouped bars: one group per condition, one bar per backbone."""
    conditions = list(next(iter(values.values())))
    width, height, left, bottom, top = 820, 340, 50, 60, 40
    low = max(0.0, min(min(v.values()) for v in values.values()) - 0.05)
    high = min(1.0, max(max(v.values()) for v in values.values()) + 0.03)
    group = (width - left - 20) / len(conditions)
    bar = group / (len(values) + 1)

    def y(value: float) -> float:
        return height - bottom - (height - bottom - top) * (value - low) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{title}</text>',
        f'<line x1="{left}" y1="{y(low)}" x2="{width - 20}" y2="{y(low)}" stroke="#999"/>',
    ]
    for tick in np.linspace(low, high, 5):
        parts.append(f'<text x="8" y="{y(tick) + 4:.1f}">{tick:.2f}</text>')
    for i, condition in enumerate(conditions):
        for j, by_condition in enumerate(values.values()):
            value = by_condition[condition]
            x = left + i * group + bar / 2 + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar - 3:.1f}" '
                f'height="{y(low) - y(value):.1f}" fill="{PALETTE[j % len(PALETTE)]}"/>'
                f'<text x="{x + (bar - 3) / 2:.1f}" y="{y(value) - 3:.1f}" font-size="10" '
                f'text-anchor="middle">{value:.3f}</text>'
            )
        parts.append(
            f'<text x="{left + i * group + group / 2:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{condition}</text>'
        )
    step = (width - left - 20) / len(values)  # the legend shares the width, however many arms
    for j, arm in enumerate(values):
        parts.append(
            f'<rect x="{left + step * j:.1f}" y="{height - 22}" width="10" height="10" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{left + step * j + 14:.1f}" y="{height - 13}">'
            f"{arm}</text>"
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-prefix", type=Path, default=ROOT / "docs" / "robustness")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "robustness.json")
    parser.add_argument(
        "--arms",
        nargs="+",
        choices=ARMS,
        default=list(ARMS),
        help="the backbones to run; the others' rows are read from --earlier",
    )
    parser.add_argument(
        "--earlier",
        type=Path,
        help="an earlier run's results (JSON) holding the arms not run now, same seed and split",
    )
    parser.add_argument(
        "--label",
        default="pretrained",
        help="the pretrained arm's name in the tables (e.g. 'pretrained, phone photos', to set "
        "it beside an earlier backbone's rows read from --earlier)",
    )
    arguments = parser.parse_args()
    if set(arguments.arms) != set(ARMS) and arguments.earlier is None:
        parser.error("--earlier is needed for the arms not run")

    skus, images, texts, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    category_names, codes = np.unique(families, return_inverse=True)
    train, tasks = load_split(arguments.split, row_of)
    evaluated = sorted(
        {
            row_of[sku]
            for fitb, compatibility in tasks.values()
            for sku in [
                *(s for t in fitb for s in (*t.question, *t.answers)),
                *(s for t in compatibility for s in t.items),
            ]
        }
    )
    print(f"# {len(evaluated)} of {len(skus)} items are evaluated (and degraded)", file=sys.stderr)
    backbones = {
        "from scratch": lambda: create_untrained_backbone(seed=0),
        "pretrained": lambda: load_backbone("outfits-tiny", str(arguments.backbone)),
    }
    results = []
    if arguments.earlier is not None:  # the from-scratch arm does not change with the backbone
        earlier = json.loads(arguments.earlier.read_text())["runs"]
        running = {"from scratch"} & set(arguments.arms)
        running |= {arguments.label} if "pretrained" in arguments.arms else set()
        results = [row for row in earlier if row["arm"] not in running]
    with tempfile.TemporaryDirectory() as scratch:
        degraded_paths = {}
        for name, degradation in DEGRADATIONS.items():
            started = time.perf_counter()
            folder = Path(scratch) / str(len(degraded_paths))
            degraded_paths[name] = degrade_files(
                [images[row] for row in evaluated], degradation, folder, arguments.seed
            )
            print(f"# {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for arm in arguments.arms:
            started = time.perf_counter()
            backbone = backbones[arm]()
            clean = encode_items(backbone, images, texts)
            fitted = fit_space(
                TrainingCatalog(skus, list(families), ItemEncoder(clean), train),
                train,
                TrainingOptions(epochs=arguments.epochs, seed=arguments.seed),
            )
            print(f"# {arm}: trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            for condition in [CLEAN, *DEGRADATIONS]:
                vectors = clean.copy()
                if condition != CLEAN:
                    image_dim = vectors.shape[1] // 2
                    vectors[evaluated, :image_dim] = encode_images(
                        backbone, degraded_paths[condition]
                    )
                space = trained_space(
                    fitted.head, ItemEncoder(vectors), codes, category_names.tolist(), train
                )
                scorer = SkuScorer(
                    TypeAwareScorer(space.pair_weights), space.vectors, space.categories, row_of
                )
                label = arguments.label if arm == "pretrained" else arm
                row = {"arm": label, "condition": condition} | split_figures(scorer, tasks)
                results.append(row)
                print(json.dumps(row), flush=True)

    def of(arm: str, condition: str) -> dict:
        return next(r for r in results if r["arm"] == arm and r["condition"] == condition)

    print(
        "\n| backbone | evaluation images | cold FITB | warm FITB | cold AUC | warm AUC | "
        "FITB lost (mean of cold and warm) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    arms = list(dict.fromkeys(row["arm"] for row in results))
    for arm in arms:
        base = of(arm, CLEAN)
        for condition in [CLEAN, *DEGRADATIONS]:
            r = of(arm, condition)
            lost = (base["cold_fitb"] + base["warm_fitb"] - r["cold_fitb"] - r["warm_fitb"]) / 2
            print(
                f"| {arm} | {condition} "
                + "".join(
                    f"| {r[key]:.3f} ± {r[key + '_se']:.3f} "
                    for key in ("cold_fitb", "warm_fitb", "cold_auc", "warm_auc")
                )
                + f"| {'' if condition == CLEAN else f'{lost:+.3f}'} |"
            )
    conditions = [CLEAN, *DEGRADATIONS]
    for metric, label in (("fitb", "FITB"), ("auc", "compatibility AUC")):
        bars_svg(
            {
                arm: {
                    c: (of(arm, c)[f"cold_{metric}"] + of(arm, c)[f"warm_{metric}"]) / 2
                    for c in conditions
                }
                for arm in arms
            },
            f"Mean of cold and warm {label}, evaluation images degraded (backbone frozen)",
            Path(f"{arguments.plot_prefix}_{metric}.svg"),
        )
    arguments.results.write_text(
        json.dumps({"arguments": vars(arguments), "runs": results}, default=str, indent=1)
    )
    print(f"\nplots: {arguments.plot_prefix}_*.svg; results: {arguments.results}", file=sys.stderr)


if __name__ == "__main__":
    main()
