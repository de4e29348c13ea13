"""Which source domains transfer best: the offline backbone pretrained on the Mango catalog's own
images and captions alone, with fashion-product-images, with H&M, and with all three, then the
same compatibility head trained on each (backbone frozen, transfer_study.py's protocol) and
scored on the Mango split (learned space alone: co-occurrence is not transfer), with standard
errors. Every variant gets the same compute, not the same epochs: --passes image-caption pairs
seen in all (by default the demo backbone's 16 epochs of 18,483 pairs), so a larger source
domain gets fewer epochs and each variant stays inside the 90-minute pretraining budget of the
slower machine. One pretraining takes about 70 minutes on a 2-core AVX2 machine: the study is
resumable — each variant's backbone and figures are kept in --work, and a variant already done
is read back, not run again — so it can be run a variant or two at a time.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/source_domains.py \\
        --work /tmp/source-domains [--split var/mango-split] [--variants all ...] \\
        [--passes 295728] [--results docs/source_domains.json]

OUTFITS_VAR_DIR must hold the imported Mango catalog (docs/model.md, "Reproduce"): pretraining
reads the catalog's images and captions from it.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import (  # noqa: E402
    MANGO,
    family_members,
    load_catalog,
    load_split,
    split_figures,
)
from embeddings.engine.backbone import load_backbone  # noqa: E402
from embeddings.engine.encode import encode_items  # noqa: E402
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.train import ItemEncoder  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
FASHION_PRODUCT_IMAGES = (
    f"{DATASETS}/fashion-product-images/styles.csv:"
    "productDisplayName,articleType,baseColour,usage,gender"
)
HM = (
    f"{DATASETS}/hm/articles.csv:"
    "product_type_name,prod_name,colour_group_name,graphical_appearance_name,detail_desc"
)
VARIANTS: dict[str, list[str]] = {
    "mango": [],
    "mango+fashion-product-images": [f"--pairs={FASHION_PRODUCT_IMAGES}"],
    "mango+hm": [f"--pairs={HM}"],
    "all": [f"--pairs={FASHION_PRODUCT_IMAGES}", f"--pairs={HM}"],
    # The default's domains, half of the images shown as phone photos of themselves.
    "mango+fashion-product-images+phone-photos": [
        f"--pairs={FASHION_PRODUCT_IMAGES}",
        "--phone-photos=0.5",
    ],
}


def source_pairs(variant: str, catalog_size: int) -> int:
    """How many image-caption pairs the variant pretrains on: the catalog's, plus each --pairs
    CSV's rows whose image is on disk (what pretrain_backbone reads)."""
    found = catalog_size
    for argument in VARIANTS[variant]:
        if not argument.startswith("--pairs="):
            continue
        csv_path = Path(argument.removeprefix("--pairs=").split(":")[0])
        with csv_path.open(newline="", encoding="utf-8") as handle:
            found += sum(
                1 for row in csv.DictReader(handle) if (csv_path.parent / row["image"]).is_file()
            )
    return found


def pretrain(variant: str, work: Path, epochs: int) -> tuple[Path, float]:
    """The variant's backbone, pretrained now unless --work has it; and the seconds it took."""
    checkpoint = work / f"{variant}.safetensors"
    timing = work / f"{variant}.seconds"
    if checkpoint.is_file() and timing.is_file():
        return checkpoint, float(timing.read_text())
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "pretrain_backbone",
            f"--epochs={epochs}",
            f"--output={checkpoint}",
            *VARIANTS[variant],
        ],
        check=True,
        env=os.environ,
    )
    seconds = time.perf_counter() - started
    timing.write_text(f"{seconds:.0f}")
    return checkpoint, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--passes",
        type=int,
        default=16 * 18_483,
        help="image-caption pairs each variant's pretraining sees (epochs = passes / pairs)",
    )
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "source_domains.json")
    arguments = parser.parse_args()
    if "OUTFITS_VAR_DIR" not in os.environ:
        raise SystemExit("Set OUTFITS_VAR_DIR to the var folder holding the imported catalog.")

    arguments.work.mkdir(parents=True, exist_ok=True)
    skus, images, texts, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    train, tasks = load_split(arguments.split, row_of)
    members = family_members(skus, families)
    for variant in arguments.variants:
        done = arguments.work / f"{variant}.json"
        if done.is_file():
            print(done.read_text())
            continue
        pairs = source_pairs(variant, len(skus))
        epochs = max(1, round(arguments.passes / pairs))
        print(f"{variant}: {pairs} pairs, {epochs} epochs", flush=True)
        checkpoint, seconds = pretrain(variant, arguments.work, epochs)
        vectors = encode_items(load_backbone("outfits-tiny", str(checkpoint)), images, texts)
        runs = []
        for seed in arguments.seeds:
            fitted = fit_space(
                TrainingCatalog(skus, list(families), ItemEncoder(vectors), train),
                train,
                TrainingOptions(epochs=arguments.head_epochs, seed=seed),
            )
            space = fitted.space
            scorer = SkuScorer(
                TypeAwareScorer(space.pair_weights), space.vectors, space.categories, row_of
            )
            run = {"seed": seed} | split_figures(scorer, tasks, members)
            runs.append(run)
        result = {
            "variant": variant,
            "pairs": pairs,
            "epochs": epochs,
            "pretraining_seconds": seconds,
            "runs": runs,
        }
        done.write_text(json.dumps(result))
        print(json.dumps(result), flush=True)

    results = [
        json.loads((arguments.work / f"{v}.json").read_text())
        for v in VARIANTS
        if (arguments.work / f"{v}.json").is_file()
    ]
    print(
        "\n| source domains | pairs × epochs | pretraining | cold FITB | warm FITB | cold AUC "
        "| warm AUC | cold Recall@10 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        runs = result["runs"]

        def cell(key: str, runs=runs) -> str:
            values = [r[key] for r in runs]
            return f"{np.mean(values):.3f} ± {np.mean([r[key + '_se'] for r in runs]):.3f}"

        recall = np.mean([r["cold_recall_at_10"] for r in runs])
        print(
            f"| {result['variant']} | {result['pairs']:,} × {result['epochs']} "
            f"| {result['pretraining_seconds'] / 60:.0f} min "
            f"| {cell('cold_fitb')} | {cell('warm_fitb')} | {cell('cold_auc')} "
            f"| {cell('warm_auc')} | {recall:.3f} |"
        )
    arguments.results.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
