"""What a refresh's engine costs by catalog size: embeddings.engine.refresh.refreshed() and
save() of N new products into a version of 10k, 100k and 1M items, on one thread as the refresh
queue's worker runs it (OUTFITS_REFRESH_THREADS), no Django, no web processes: the part of
benchmarks/freshness.py's refresh that the catalog's size could make grow.

    .venv/bin/python benchmarks/refresh_cost.py [--catalogs 10000 100000 1000000]
        [--newcomers 1000] [--repeat 3] [--cache DIR] [--json FILE]

The catalog is drawn as freshness.py draws its enlarged one: 7 categories, each item's vector
around one of 1,200 seed items' (random here), type-aware pair weights, computed neighbours
exact up to 200,000 items and found by an IVF search above (minutes instead of the whole
build's half hour; a refresh reads them as they are). Each run loads the saved base afresh
(memory-mapped, as the worker does), refreshes N newcomers drawn like the catalog into it and
saves the result; the table gives medians over --repeat runs, and what the save wrote anew
(the files it did not hard-link). Bases are cached in --cache (the 1M one takes about 10
minutes to build)."""

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.engine.index import (  # noqa: E402
    CompatibilityIndex,
    build_category_index,
    rows_by_category,
)
from embeddings.engine.refresh import Upsert, refreshed  # noqa: E402
from embeddings.engine.scorers import TypeAwareScorer  # noqa: E402
from embeddings.engine.space import PairWeights  # noqa: E402
from embeddings.engine.threads import limited_threads  # noqa: E402

CATEGORIES = ["Tops", "Bottoms", "Dresses", "Outerwear", "Shoes", "Bags", "Jewellery"]
NEVER_TOGETHER = [{"Dresses", "Bottoms"}, {"Dresses", "Tops"}]
DIMENSIONS = 128
SEEDS = 1200
DEPTH = 24
EXACT_UP_TO = 200_000


def seeds(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    vectors = rng.standard_normal((SEEDS, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, [CATEGORIES[n % len(CATEGORIES)] for n in range(SEEDS)]


def drawn(seed_vectors: np.ndarray, rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """Vectors around the seeds' (as freshness.py's enlarge() draws them), unit."""
    noise = rng.standard_normal((len(like), DIMENSIONS)).astype(np.float32)
    vectors = seed_vectors[like] + 0.5 * noise / 8
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def base_index(total: int) -> CompatibilityIndex:
    rng = np.random.default_rng(0)
    seed_vectors, seed_categories = seeds(rng)
    like = rng.integers(0, SEEDS, size=total)
    vectors = drawn(seed_vectors, rng, like)
    categories = [seed_categories[n] for n in like.tolist()]
    pairs = [(a, b) for a in range(len(CATEGORIES)) for b in range(a + 1, len(CATEGORIES))]
    weights = rng.gamma(4.0, 0.25, size=(len(pairs), DIMENSIONS)).astype(np.float32)
    weights /= weights.mean(axis=1, keepdims=True)
    complements = {
        category: [o for o in CATEGORIES if o != category and {category, o} not in NEVER_TOGETHER]
        for category in CATEGORIES
    }
    index = CompatibilityIndex(
        [f"BASE-{n:07d}" for n in range(total)],
        categories,
        vectors,
        {c: build_category_index(vectors[r], r) for c, r in rows_by_category(categories).items()},
        complements,
        TypeAwareScorer(PairWeights(CATEGORIES, np.array(pairs), weights)),
    )
    exact = total <= EXACT_UP_TO
    index.neighbours = index.computed_neighbours(DEPTH) if exact else ivf_neighbours(index)
    return index


def ivf_neighbours(index: CompatibilityIndex) -> np.ndarray:
    """Computed neighbours found by an IVF search (recall about 0.9), as freshness.py's."""
    table = index.empty_neighbours(DEPTH)
    for category, anchors in index.rows_of_category.items():
        for slot, other in enumerate(index.complements_of(category)):
            candidates = index.rows_of_category[other]
            pool = np.ascontiguousarray(index.vectors[candidates])
            lists = int(4 * math.sqrt(len(candidates)))
            quantizer = faiss.IndexFlatIP(DIMENSIONS)
            search = faiss.IndexIVFFlat(quantizer, DIMENSIONS, lists, faiss.METRIC_INNER_PRODUCT)
            search.train(pool[np.random.default_rng(0).permutation(len(pool))[: 40 * lists]])
            search.add(pool)
            search.nprobe = 8
            for start in range(0, len(anchors), 65536):
                chunk = anchors[start : start + 65536]
                queries = index.queries_towards(other, chunk)
                _, found = search.search(np.ascontiguousarray(queries, dtype=np.float32), DEPTH)
                table[chunk, slot] = np.where(found >= 0, candidates[found], -1)
    return table


def newcomers(count: int, run: int) -> dict[str, Upsert]:
    seed_vectors, seed_categories = seeds(np.random.default_rng(0))
    rng = np.random.default_rng(1000 + run)
    like = rng.integers(0, SEEDS, size=count)
    vectors = drawn(seed_vectors, rng, like)
    return {
        f"NEW-{run}-{n:06d}": Upsert(seed_categories[seed], vectors[n])
        for n, seed in enumerate(like.tolist())
    }


def written_anew(directory: Path) -> int:
    """Bytes of the files in `directory` that are not hard links of others."""
    files = [f for f in directory.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files if f.stat().st_nlink == 1)


def measure(total: int, count: int, repeat: int, cache: Path) -> dict:
    base = cache / f"base-{total}"
    if not (base / "items.json").is_file():
        started = time.perf_counter()
        shutil.rmtree(base, ignore_errors=True)
        base_index(total).save(base)
        print(f"  base of {total:,} built in {time.perf_counter() - started:.0f} s", flush=True)
    refresh, save, written, lists = [], [], [], []
    for run in range(repeat):
        index = CompatibilityIndex.load(base)
        index.rows_of_category, index.row_of_sku  # noqa: B018  (the worker keeps its last)
        upserts = newcomers(count, run)
        with limited_threads(1):
            started = time.perf_counter()
            after = refreshed(index, upserts, [])
            refresh.append(time.perf_counter() - started)
            target = Path(tempfile.mkdtemp(dir=cache))
            started = time.perf_counter()
            after.save(target)
            save.append(time.perf_counter() - started)
        written.append(written_anew(target))
        old = len(index.skus)
        lists.append(int((np.asarray(after.neighbours[:old]) >= old).any(axis=(1, 2)).sum()))
        shutil.rmtree(target)
    return {
        "catalog": total,
        "newcomers": count,
        "refresh_seconds": statistics.median(refresh),
        "save_seconds": statistics.median(save),
        "written_mb": statistics.median(written) / 2**20,
        "lists_entered": statistics.median(lists),
        "runs": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--newcomers", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, help="where bases are kept (default: a temp dir)")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    cache = options.cache or Path(tempfile.mkdtemp(prefix="refresh-cost-"))
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    print("| catalog | newcomers | refresh (median) | save | written anew | lists entered |")
    print("|---:|---:|---:|---:|---:|---:|")
    for total in options.catalogs:
        for count in options.newcomers:
            result = measure(total, count, options.repeat, cache)
            results.append(result)
            print(
                f"| {total:,} | {count:,} | {result['refresh_seconds']:.2f} s "
                f"| {result['save_seconds']:.2f} s | {result['written_mb']:,.0f} MB "
                f"| {result['lists_entered']:,} |",
                flush=True,
            )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    if not options.cache:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
