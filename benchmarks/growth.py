"""Cost growth: time and memory of each stage against catalog size, on this machine, in one run.

    .venv/bin/python benchmarks/growth.py [--sizes 1000,10000,100000]
        [--json docs/growth.json] [--plot docs/growth.svg]

For each size N, each stage runs in a fresh child process, which reports its seconds and the
memory it added (peak RSS during the stage minus RSS when the stage began):

- embed: N product photos through the project's image encoder (`encode_images`, the offline
  backbone outfits-tiny with random weights: the same speed as trained ones). Photos: Mango's
  (../shared/datasets/mango/images) repeated to N when present, else generated JPEGs; read
  once before the clock starts, so they come from the page cache.
- train: one epoch of the compatibility head (type-aware, head only) on N synthetic items
  (image ⊕ title vectors of the offline backbone's width) and N/2 synthetic outfits (Mango
  has 0.56 outfits a product); a retrain runs OUTFITS_TRAINING_EPOCHS of them (30).
- index: `CompatibilityIndex.build` as a retrain builds a version (12 categories, the indexes
  chosen by size, computed neighbours 24 deep), and its files saved; also their size on disk.
- serve: one product's matches in every complementary category, as the API asks for them
  (`nearest_rows`, 9 deep: the computed neighbours), for 2,000 random products of the saved
  version loaded from disk; median and p99 per product, and the memory loading it added.

The matches endpoint end to end (HTTP, PostgreSQL, 2 gunicorn workers) is benchmarks/api.py.
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from loglog import Panel, write_loglog_svg  # noqa: E402

STAGES = ("embed", "train", "index", "serve")
OUTFITS_PER_PRODUCT = 0.5
SERVED_PRODUCTS = 2000
ROW_DEPTH = 9  # the longest matches row the computed neighbours answer (limit 9 a category)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shop(count: int, seed: int = 0) -> tuple[list[str], list[list[int]]]:
    """The categories of `count` products (the API benchmark's 12, in its shares) and N/2
    outfits of them."""
    from api import CATEGORIES, synthetic_outfits

    rng = np.random.default_rng(seed)
    shares = np.asarray([share for _, _, share in CATEGORIES.values()], dtype=float)
    names = rng.choice(list(CATEGORIES), size=count, p=shares / shares.sum()).tolist()
    rows_by_category: dict[str, list[int]] = {}
    for row, name in enumerate(names):
        rows_by_category.setdefault(name, []).append(row)
    return names, synthetic_outfits(rows_by_category, int(count * OUTFITS_PER_PRODUCT), rng)


def photos(count: int, folder: Path) -> list[Path]:
    from embedding import generated_images, mango_images

    found = mango_images() or generated_images(min(count, 2000), folder)
    return [found[n % len(found)] for n in range(count)]


def embed(count: int, folder: Path) -> dict:
    from embeddings.engine.backbone import create_untrained_backbone
    from embeddings.engine.encode import encode_images

    paths = photos(count, folder)
    for path in set(paths):  # into the page cache: the disk is not what is measured
        path.read_bytes()
    backbone = create_untrained_backbone()
    encode_images(backbone, paths[:64])  # warm-up: oneDNN picks its kernels
    began, started = rss_mb(), time.perf_counter()
    vectors = encode_images(backbone, paths)
    return measured(started, began, images_per_second=count / (time.perf_counter() - started)) | {
        "shape": list(vectors.shape)
    }


def train(count: int, folder: Path) -> dict:
    from embeddings.engine.train import HeadTrainingConfig, train_compatibility_head

    names, outfits = shop(count)
    codes = np.unique(names, return_inverse=True)[1]
    rng = np.random.default_rng(1)
    items = rng.standard_normal((count, 256), dtype=np.float32)  # image ⊕ title, 128 each
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    began, started = rss_mb(), time.perf_counter()
    train_compatibility_head(items, outfits, codes, HeadTrainingConfig(epochs=1))
    return measured(started, began, outfits=len(outfits))


def index(count: int, folder: Path) -> dict:
    from api import random_pair_weights

    from embeddings.engine.index import NEIGHBOUR_DEPTH, CompatibilityIndex, index_kind

    names, outfits = shop(count)
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((count, 128), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    weights = random_pair_weights(outfits, names, rng)
    skus = [f"SKU-{n:07d}" for n in range(count)]
    began, started = rss_mb(), time.perf_counter()
    built = CompatibilityIndex.build(skus, names, vectors, outfits, 1.0, weights, NEIGHBOUR_DEPTH)
    built.save(folder / "version")
    disk = sum(f.stat().st_size for f in (folder / "version").rglob("*") if f.is_file())
    sizes = {category: int((np.asarray(names) == category).sum()) for category in set(names)}
    return measured(started, began, disk_mb=round(disk / 2**20, 1)) | {
        "index_kinds": sorted({index_kind(size) for size in sizes.values()})
    }


def serve(count: int, folder: Path) -> dict:
    import faiss

    from embeddings.engine.index import CompatibilityIndex

    faiss.omp_set_num_threads(1)  # as web processes serve (OUTFITS_SERVING_FAISS_THREADS)
    began, started = rss_mb(), time.perf_counter()
    loaded = CompatibilityIndex.load(folder / "version")
    load_seconds = time.perf_counter() - started
    rows = np.random.default_rng(3).choice(count, size=min(SERVED_PRODUCTS, count), replace=False)
    took = []
    for row in rows.tolist():
        started = time.perf_counter()
        for category in loaded.complements_of(loaded.categories[row]):
            loaded.nearest_rows(row, category, ROW_DEPTH)
        took.append(time.perf_counter() - started)
    return {
        "seconds": round(load_seconds, 3),
        "added_mb": round(max(peak_mb(), rss_mb()) - began, 1),
        "p50_ms": round(float(np.median(took)) * 1000, 3),
        "p99_ms": round(float(np.percentile(took, 99)) * 1000, 3),
    }


def measured(started: float, began: float, **extra: float) -> dict:
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "added_mb": round(peak_mb() - began, 1),
    } | {key: round(value, 1) for key, value in extra.items()}


def run_stage(stage: str, count: int, folder: Path) -> dict:
    """`stage` at `count` products in a child process of its own (a clean peak RSS)."""
    done = subprocess.run(
        [sys.executable, __file__, "--stage", stage, "--size", str(count), "--folder", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{stage} at {count:,} products failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


COLOURS = {"embed": "#447e9b", "train": "#9bbb59", "index": "#c0504d", "serve": "#8064a2"}


def svg_plot(rows: list[dict], path: Path) -> None:
    """Time and added memory against catalog size, log-log, a line per stage (serve's time is
    the p50 of one product's matches, in ms; the others' in s)."""

    def lines(value) -> dict[str, dict[int, float]]:
        return {
            stage: {r["products"]: max(value(r), 0.1) for r in rows if r["stage"] == stage}
            for stage in STAGES
        }

    panels = [
        Panel(
            "time: s (serve: ms a product)",
            lines(lambda r: r["p50_ms"] if r["stage"] == "serve" else r["seconds"]),
        ),
        Panel("memory added, MB", lines(lambda r: r["added_mb"])),
    ]
    write_loglog_svg(panels, COLOURS, path)


def print_table(rows: list[dict]) -> None:
    print("\n| Products | Stage | Time | Memory added | Notes |\n|---:|---|---:|---:|---|")
    for row in rows:
        time_text = (
            f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms a product (load {row['seconds']} s)"
            if row["stage"] == "serve"
            else f"{row['seconds']} s"
        )
        notes = ", ".join(
            f"{key} {value}"
            for key, value in row.items()
            if key not in {"products", "stage", "seconds", "added_mb", "p50_ms", "p99_ms"}
        )
        print(
            f"| {row['products']:,} | {row['stage']} | {time_text} | {row['added_mb']} MB "
            f"| {notes} |"
        )
    by = {(r["stage"], r["products"]): r for r in rows}
    sizes = sorted({r["products"] for r in rows})
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        print(f"\nGrowth from {first:,} to {last:,} products ({last // first}× the catalog):")
        for stage in STAGES:
            a, b = by[(stage, first)], by[(stage, last)]
            field = "p50_ms" if stage == "serve" else "seconds"
            print(f"  {stage}: time {b[field] / a[field]:.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="and draw them here (SVG)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # a child's stage
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.stage:
        stages = {"embed": embed, "train": train, "index": index, "serve": serve}
        print(json.dumps(stages[options.stage](options.size, options.folder)))
        return

    rows = []
    for count in (int(size) for size in options.sizes.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="bench-growth-"))
        try:
            for stage in STAGES:
                row = {"products": count, "stage": stage} | run_stage(stage, count, folder)
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(rows)
    if options.json:
        from api import machine

        about = machine()
        options.json.write_text(json.dumps({"run": about, "rows": rows}, indent=2) + "\n")
    if options.plot:
        svg_plot(rows, options.plot)


if __name__ == "__main__":
    main()
