"""Does an ensemble of outfit-level models (trained with different seeds, their corrections
averaged) beat one? On the active version's space, its pair weights and curated pairs: each
seed's model alone, then the mean of the first 2, 3, … models, on the Mango split's cold and
warm questions (FITB; AUC for the ensembles). The models train on every training outfit of
the split (a training holds a few out for its own questions), so a single model here is not
the version's own.

    OUTFITS_VAR_DIR=/tmp/mango/var .venv/bin/python benchmarks/outfit_model_ensembles.py \\
        --split /tmp/mango-split [--seeds 0 1 2 3] [--epochs 10]

OUTFITS_VAR_DIR must hold the imported Mango catalog and an active version (docs/model.md,
"Reproduce").
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import active_version  # noqa: E402
from benchmarks.mango_split import read_training_outfits  # noqa: E402


class MeanOfModels:
    """The outfit models' corrections averaged: the scores of their mean query."""

    def __init__(self, models: list) -> None:
        self.models, self.shape = models, models[0].shape

    def codes(self, categories):
        return self.models[0].codes(categories)

    def corrections(self, *inputs) -> np.ndarray:
        return np.mean([model.corrections(*inputs) for model in self.models], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=10)
    arguments = parser.parse_args()
    version, index = active_version()
    from embeddings.engine.evaluate import (
        evaluate_tasks,
        read_compatibility_tasks,
        read_fitb_tasks,
    )
    from embeddings.engine.outfit_training import OutfitTrainingConfig, train_outfit_model
    from embeddings.engine.scorers import OutfitScorer, SkuScorer

    base = getattr(index.scorer, "base", index.scorer)  # the type-aware part and its pairs
    row_of = index.row_of_sku
    outfits = [[row_of[sku] for sku in outfit] for outfit in read_training_outfits(arguments.split)]
    fitb = {s: read_fitb_tasks(arguments.split / f"{s}_fitb.json") for s in ("cold", "warm")}
    compat = {
        s: read_compatibility_tasks(arguments.split / f"{s}_compat.txt") for s in ("cold", "warm")
    }

    def scored(model, split: str, with_auc: bool = False) -> str:
        scorer = SkuScorer(OutfitScorer(base, model), index.vectors, index.categories, row_of)
        found = evaluate_tasks(scorer, fitb[split], compat[split] if with_auc else ())
        auc = f" AUC {found.compatibility_auc:.4f}" if with_auc else ""
        return f"{split} FITB {found.fitb_accuracy:.3f}{auc}"

    print(f"version {version.name}, {arguments.epochs} epochs a model")
    models = []
    for seed in arguments.seeds:
        started = time.perf_counter()
        model, _ = train_outfit_model(
            np.asarray(index.vectors, dtype=np.float32),
            index.categories,
            outfits,
            base.pair_weights,
            OutfitTrainingConfig(seed=seed, epochs=arguments.epochs),
        )
        models.append(model)
        seconds = time.perf_counter() - started
        print(f"seed {seed} ({seconds:.0f} s): {scored(model, 'cold')}, {scored(model, 'warm')}")
    for count in range(2, len(models) + 1):
        mean = MeanOfModels(models[:count])
        print(f"mean of {count}: {scored(mean, 'cold', True)}, {scored(mean, 'warm', True)}")


if __name__ == "__main__":
    main()
