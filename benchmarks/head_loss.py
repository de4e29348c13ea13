"""Which loss trains the compatibility head best: the triplet margin loss (one wrong answer per
positive) against a softmax over many wrong answers of the positive's category (InfoNCE), on
the same item vectors of one backbone (frozen), over several seeds, scored on the Mango split
by the learned space alone (co-occurrence is not what the loss changes), with standard errors
and the seconds each training took.

    .venv/bin/python benchmarks/head_loss.py --backbone var/backbones/outfits-tiny.safetensors \\
        [--split var/mango-split] [--seeds 0 1] [--variants ...] [--results docs/head_loss.json]
"""

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.transfer_study import MANGO, family_members, load_catalog, load_split, split_figures  # noqa: E402
from embeddings.engine.backbone import load_backbone  # noqa: E402
from embeddings.engine.encode import encode_items  # noqa: E402
from embeddings.engine.scorers import SkuScorer, TypeAwareScorer  # noqa: E402
from embeddings.engine.space import CompatibilitySpace, PairWeights  # noqa: E402
from embeddings.engine.train import (  # noqa: E402
    CompatibilityHead,
    HeadTrainingConfig,
    train_compatibility_head,
    trained_space,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "triplet margin": {},
    "softmax, 32 negatives": {"negatives": 32},
    "softmax, 128 negatives": {"negatives": 128},
    "softmax, 32 negatives, temperature 0.05": {"negatives": 32, "temperature": 0.05},
}


def item_vectors(backbone: Path, images: list[Path], texts: list[str], work: Path) -> np.ndarray:
    """The catalog's item vectors through `backbone`, cached in `work` by the file's content."""
    digest = hashlib.sha256(backbone.read_bytes()).hexdigest()[:16]
    cached = work / f"items-{digest}.npy"
    if not cached.is_file():
        work.mkdir(parents=True, exist_ok=True)
        np.save(cached, encode_items(load_backbone("outfits-tiny", str(backbone)), images, texts))
    return np.load(cached)


@dataclass(frozen=True)
class FrozenStudy:
    """The Mango catalog, its split and one backbone's item vectors, as a study of the head on
    a frozen backbone uses them (this one and text_tuning.py)."""

    texts: list[str]
    row_of: dict[str, int]
    train: list[list[int]]
    tasks: dict
    members: dict[str, list[str]]
    category_names: list[str]
    codes: np.ndarray
    vectors: np.ndarray

    @classmethod
    def load(cls, arguments: argparse.Namespace) -> "FrozenStudy":
        skus, images, texts, families = load_catalog(arguments.data)
        row_of = {sku: row for row, sku in enumerate(skus)}
        train, tasks = load_split(arguments.split, row_of)
        names, codes = np.unique(families, return_inverse=True)
        vectors = item_vectors(arguments.backbone, images, texts, arguments.work)
        members = family_members(skus, families)
        return cls(texts, row_of, train, tasks, members, names.tolist(), codes, vectors)

    def space(self, head: CompatibilityHead, vectors: np.ndarray | None = None):
        """What `head` serves over these items (`vectors`: the item vectors it was trained on,
        when not the backbone's)."""
        items = self.vectors if vectors is None else vectors
        return trained_space(head, items, self.codes, self.category_names, self.train)

    def figures(self, space: CompatibilitySpace) -> dict[str, Any]:
        """The split's figures of `space`'s type-aware score, learned space alone."""
        scorer = SkuScorer(
            TypeAwareScorer(space.pair_weights), space.vectors, space.categories, self.row_of
        )
        return split_figures(scorer, self.tasks, self.members)


def study_arguments(description: str, results: str) -> argparse.ArgumentParser:
    """The command line every frozen-backbone study shares; `results`: its file in docs/."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MANGO)
    parser.add_argument("--split", type=Path, default=ROOT / "var" / "mango-split")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "head-loss")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / results)
    return parser


def ensemble(spaces: list[CompatibilitySpace]) -> CompatibilitySpace:
    """The heads' spaces side by side, each scaled by 1/sqrt(K): one space (one index) whose
    type-aware score is the mean of the heads' scores."""
    scale = 1.0 / np.sqrt(len(spaces))
    first = spaces[0].pair_weights
    assert all(np.array_equal(s.pair_weights.pairs, first.pairs) for s in spaces)
    weights = np.concatenate([s.pair_weights.weights for s in spaces], axis=1)
    return CompatibilitySpace(
        np.concatenate([s.vectors for s in spaces], axis=1) * scale,
        spaces[0].categories,
        PairWeights(first.categories, first.pairs, weights),
    )


def main() -> None:
    parser = study_arguments(__doc__.splitlines()[0], "head_loss.json")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    arguments = parser.parse_args()
    study = FrozenStudy.load(arguments)

    rows = []

    def record(name: str, seed: int | None, space: CompatibilitySpace, seconds: float) -> None:
        row = {"variant": name, "seed": seed, "seconds": round(seconds, 1)}
        row |= study.figures(space)
        rows.append(row)
        print(json.dumps(row), flush=True)

    names_in_order = []
    for variant in arguments.variants:
        spaces, times = [], []
        for seed in arguments.seeds:
            config = replace(
                HeadTrainingConfig(epochs=arguments.epochs, seed=seed), **VARIANTS[variant]
            )
            started = time.perf_counter()
            head, losses = train_compatibility_head(study.vectors, study.train, study.codes, config)
            seconds = time.perf_counter() - started
            spaces.append(study.space(head))
            times.append(seconds)
            record(variant, seed, spaces[-1], seconds)
        names_in_order.append(variant)
        if len(spaces) > 1:
            names_in_order.append(f"{variant}: ensemble of the {len(spaces)} seeds")
            record(names_in_order[-1], None, ensemble(spaces), sum(times))

    print("\n| loss | cold FITB | warm FITB | cold AUC | warm AUC | cold R@10 | R@30 | R@50 | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant in names_in_order:
        runs = [r for r in rows if r["variant"] == variant]

        def cell(key: str, runs=runs) -> str:
            values = [r[key] for r in runs]
            spread = f" ({min(values):.3f}–{max(values):.3f})" if len(values) > 1 else ""
            error = np.mean([r[key + "_se"] for r in runs]) if key + "_se" in runs[0] else None
            return f"{np.mean(values):.3f}{spread}" + (f" ± {error:.3f}" if error else "")

        recalls = " | ".join(
            f"{np.mean([r[f'cold_recall_at_{k}'] for r in runs]):.3f}" for k in (10, 30, 50)
        )
        print(
            f"| {variant} | {cell('cold_fitb')} | {cell('warm_fitb')} | {cell('cold_auc')} "
            f"| {cell('warm_auc')} | {recalls} | {np.mean([r['seconds'] for r in runs]):.0f} |"
        )
    arguments.results.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
