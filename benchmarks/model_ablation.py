"""What each part of the compatibility model brings, on the Mango split: the raw backbone
vectors, a shared-space head and the type-aware head (backbone frozen), each trained on all
the training outfits and scored on the cold and warm task files — learned space alone, and
warm FITB with curated co-occurrence blended in.

    .venv/bin/python benchmarks/model_ablation.py \\
        --backbone var/backbones/outfits-tiny.safetensors [--split var/mango-split] [--epochs 30]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from transfer_study import MANGO, load_catalog, load_split  # noqa: E402

from embeddings.engine.backbone import load_backbone  # noqa: E402
from embeddings.engine.cooccurrence import CoOccurrence  # noqa: E402
from embeddings.engine.encode import encode_items  # noqa: E402
from embeddings.engine.evaluate import evaluate_tasks  # noqa: E402
from embeddings.engine.fit import TrainingCatalog, TrainingOptions, fit_space  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.space import CompatibilitySpace, PairWeights  # noqa: E402
from embeddings.engine.train import ItemEncoder  # noqa: E402

BLEND_WEIGHT = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--epochs", type=int, default=30)
    arguments = parser.parse_args()

    skus, images, texts, families = load_catalog(arguments.data)
    row_of = {sku: row for row, sku in enumerate(skus)}
    train, tasks = load_split(arguments.split, row_of)
    item_vectors = encode_items(
        load_backbone("outfits-tiny", str(arguments.backbone)), images, texts
    )
    raw = item_vectors / np.linalg.norm(item_vectors, axis=1, keepdims=True)
    spaces = {"raw backbone vectors": CompatibilitySpace(raw, list(families), PairWeights.none())}
    catalog = TrainingCatalog(skus, list(families), ItemEncoder(item_vectors), train)
    for label, type_aware in (("shared-space head", False), ("type-aware head", True)):
        options = TrainingOptions(epochs=arguments.epochs, type_aware=type_aware)
        spaces[label] = fit_space(catalog, train, options).space

    print("| model | cold FITB | warm FITB | cold AUC | warm AUC | warm FITB served |")
    print("|---|---:|---:|---:|---:|---:|")
    curated = CoOccurrence.from_outfits(train, BLEND_WEIGHT)
    for label, space in spaces.items():

        def by_sku(scorer: TypeAwareScorer, space: CompatibilitySpace = space) -> SkuScorer:
            return SkuScorer(scorer, space.vectors, space.categories, row_of)

        content = TypeAwareScorer(space.pair_weights)
        alone = {s: evaluate_tasks(by_sku(content), *tasks[s]) for s in tasks}
        served_scorer = by_sku(TypeAwareScorer(space.pair_weights, curated))
        served = evaluate_tasks(served_scorer, tasks["warm"][0])
        print(
            f"| {label} | {alone['cold'].fitb_accuracy:.3f} | {alone['warm'].fitb_accuracy:.3f} "
            f"| {alone['cold'].compatibility_auc:.3f} | {alone['warm'].compatibility_auc:.3f} "
            f"| {served.fitb_accuracy:.3f} (w = {BLEND_WEIGHT:g}) |"
        )


if __name__ == "__main__":
    main()
