"""Index build and query at 10k, 100k and 1M items: exact search (FAISS Flat, float32), the
baseline a user would otherwise pick, against float16 codes, HNSW and IVF-PQ, in one run, and
which of them the product picks at each size (embeddings.engine.index.index_kind).

    .venv/bin/python benchmarks/index.py [--items 10000,100000,1000000] [--queries 1000]
        [--distribution latent32|uniform] [--dimensions 128]

Vectors are synthetic unit vectors. `latent32` (the default) gives them the structure of
learned embeddings: a random linear map of 32 latent factors plus isotropic noise (30% of the
norm) in 128 dimensions. `uniform` draws them uniformly from the sphere: no structure at all,
the worst case for any approximate index. Queries are 1,000 held-out vectors of the same
distribution times a positive random weight per dimension (mean 1), as the served type-aware
query of a category pair is: search is by inner product.

For each index: build seconds (2 threads), memory (its serialized size), recall@10 against the
exact answer, and the p50/p99 of one query at a time on 1 thread, as the web workers search;
HNSW at several search depths (efSearch) and IVF-PQ at several nprobe. Target: recall@10 ≥
0.95 with p99 < 2 ms at 1M items. Prints a Markdown table; --json writes the figures and
--plot draws latency and memory against size (SVG).
"""

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loglog import Panel, write_loglog_svg  # noqa: E402  (benchmarks/, this script's folder)

from embeddings.engine.index import HNSW_SEARCH_DEPTH, build_category_index, index_kind  # noqa: E402

TARGET_RECALL, TARGET_P99_MS = 0.95, 2.0
K = 10


def synthetic(count: int, dimensions: int, distribution: str, rng) -> np.ndarray:
    """`count` unit vectors of the named distribution (float32)."""
    if distribution == "uniform":
        vectors = rng.standard_normal((count, dimensions), dtype=np.float32)
    elif distribution.startswith("latent"):
        factors = int(distribution.removeprefix("latent"))
        mixing = rng.standard_normal((factors, dimensions), dtype=np.float32)
        vectors = rng.standard_normal((count, factors), dtype=np.float32) @ mixing
        noise = rng.standard_normal((count, dimensions), dtype=np.float32)
        scale = 0.3 * np.linalg.norm(vectors, axis=1, keepdims=True) / np.sqrt(dimensions)
        vectors += scale * noise
    else:
        raise SystemExit(f"unknown distribution {distribution!r}: latent<N> or uniform")
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def ivf_pq(vectors: np.ndarray) -> faiss.Index:
    """IVF-PQ as a memory-bound store would run it: 4·√N lists, 32 bytes a vector, the
    shortlist re-ranked with the full vectors."""
    lists = int(4 * np.sqrt(len(vectors)))
    coarse = faiss.IndexFlatIP(vectors.shape[1])
    pq = faiss.IndexIVFPQ(coarse, vectors.shape[1], lists, 32, 8, faiss.METRIC_INNER_PRODUCT)
    sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: 64 * lists]]
    pq.train(sample)
    refined = faiss.IndexRefineFlat(pq)
    refined.k_factor = 8
    refined.add(vectors)
    return refined


def timed_queries(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Each query alone on 1 thread: the ids found and each query's seconds."""
    faiss.omp_set_num_threads(1)
    found = np.zeros((len(queries), K), dtype=np.int64)
    seconds = []
    for i, query in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(query[np.newaxis], K)
        seconds.append(time.perf_counter() - started)
        found[i] = ids[0]
    faiss.omp_set_num_threads(2)
    return found, seconds


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def measure(
    name: str, index: faiss.Index, queries, truth, build_s: float, settings: dict
) -> list[dict]:
    """One row per setting (name → a function applying it) of `index`."""
    memory_mb = faiss.serialize_index(index).nbytes / 2**20
    rows = []
    for label, apply in settings.items():
        apply()
        found, seconds = timed_queries(index, queries)
        ordered = sorted(seconds)
        rows.append(
            {
                "index": name,
                "setting": label,
                "build_s": round(build_s, 1),
                "memory_mb": round(memory_mb, 1),
                "recall_at_10": round(recall(found, truth), 3),
                "p50_ms": round(1000 * statistics.median(ordered), 3),
                "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 3),
            }
        )
        print(f"    {name} {label}: {json.dumps(rows[-1])}", flush=True)
    return rows


def built(make: Callable[[], faiss.Index]) -> tuple[faiss.Index, float]:
    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    index = make()
    return index, time.perf_counter() - started


def measure_size(count: int, options) -> list[dict]:
    rng = np.random.default_rng(count)
    vectors = synthetic(count + options.queries, options.dimensions, options.distribution, rng)
    items, held_out = vectors[:count], vectors[count:]
    weights = rng.uniform(0.2, 1.8, options.dimensions).astype(np.float32)
    queries = np.ascontiguousarray(held_out * (weights / weights.mean()))
    ids = np.arange(count)
    print(f"\n== {count:,} items ({options.distribution}) ==", flush=True)
    faiss.omp_set_num_threads(2)
    _, truth = faiss.knn(queries, items, K, metric=faiss.METRIC_INNER_PRODUCT)
    rows = []
    for kind, label in [("float32", "exact (Flat, float32)"), ("float16", "Flat, float16")]:
        index, seconds = built(lambda kind=kind: build_category_index(items, ids, kind))
        rows += measure(label, index, queries, truth, seconds, {"": lambda: None})
        del index
    graph, seconds = built(lambda: build_category_index(items, ids, "hnsw"))
    hnsw = faiss.downcast_index(graph.index)
    depths = sorted({32, 64, HNSW_SEARCH_DEPTH, 256})
    settings = {
        f"efSearch {d}": (lambda d=d, h=hnsw: setattr(h.hnsw, "efSearch", d)) for d in depths
    }
    rows += measure("HNSW, M 32", graph, queries, truth, seconds, settings)
    del graph, hnsw
    index, seconds = built(lambda: ivf_pq(items))
    ivf = faiss.extract_index_ivf(index.base_index)
    settings = {f"nprobe {n}": (lambda n=n, i=ivf: setattr(i, "nprobe", n)) for n in (16, 64, 256)}
    rows += measure("IVF-PQ 32 B + re-rank", index, queries, truth, seconds, settings)
    chosen = index_kind(count)
    for row in rows:
        row["items"] = count
        row["product_picks"] = (
            (chosen == "float32" and row["index"].startswith("exact"))
            or (chosen == "float16" and row["index"] == "Flat, float16")
            or (chosen == "hnsw" and row["setting"] == f"efSearch {HNSW_SEARCH_DEPTH}")
        )
    return rows


PLOTTED = {  # (index, setting) → colour: the baseline, the exhaustive and the approximate
    ("exact (Flat, float32)", ""): "#888888",
    ("Flat, float16", ""): "#447e9b",
    ("HNSW, M 32", f"efSearch {HNSW_SEARCH_DEPTH}"): "#c0504d",
    ("IVF-PQ 32 B + re-rank", "nprobe 256"): "#9bbb59",
}


def svg_plot(rows: list[dict], path: Path) -> None:
    """p99 query latency and memory against the number of items, log-log, one line per index
    (HNSW at the product's search depth)."""
    colours = {f"{name} {setting}".strip(): colour for (name, setting), colour in PLOTTED.items()}

    def lines(field: str) -> dict[str, dict[int, float]]:
        return {
            f"{name} {setting}".strip(): {
                r["items"]: r[field] for r in rows if (r["index"], r["setting"]) == (name, setting)
            }
            for name, setting in PLOTTED
        }

    panels = [
        Panel("p99 query, ms", lines("p99_ms"), (TARGET_P99_MS, f"{TARGET_P99_MS:g} ms")),
        Panel("memory, MB", lines("memory_mb")),
    ]
    write_loglog_svg(panels, colours, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--distribution", default="latent32")
    parser.add_argument("--dimensions", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--plot", type=Path, help="and draw them here (SVG)")
    options = parser.parse_args()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    about = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "faiss": faiss.__version__,
        "distribution": options.distribution,
        "dimensions": options.dimensions,
        "queries": options.queries,
    }
    rows = [
        row for count in map(int, options.items.split(",")) for row in measure_size(count, options)
    ]
    if options.json:
        options.json.write_text(json.dumps({"about": about, "rows": rows}, indent=1))
    if options.plot:
        svg_plot(rows, options.plot)
    print(
        f"\n{about['date']} · {cpu} · FAISS {about['faiss']} · {options.distribution}, "
        f"{options.dimensions} dimensions · {options.queries:,} queries, 1 thread"
    )
    print(
        "\n| items | index | setting | build s | memory MB | recall@10 | p50 ms | p99 ms | "
        "exact p99 ÷ p99 | product picks |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|:-:|")
    for row in rows:
        exact = next(
            r for r in rows if r["items"] == row["items"] and r["index"].startswith("exact")
        )
        print(
            f"| {row['items']:,} | {row['index']} | {row['setting']} | {row['build_s']} | "
            f"{row['memory_mb']} | {row['recall_at_10']:.3f} | {row['p50_ms']:.3f} | "
            f"{row['p99_ms']:.3f} | {exact['p99_ms'] / row['p99_ms']:.1f}× | "
            f"{'**yes**' if row['product_picks'] else ''} |"
        )
    largest = max(row["items"] for row in rows)
    met = [
        row
        for row in rows
        if row["items"] == largest
        and row["recall_at_10"] >= TARGET_RECALL
        and row["p99_ms"] < TARGET_P99_MS
    ]
    picked = [row for row in rows if row["items"] == largest and row["product_picks"]]

    def named(chosen: list[dict]) -> str:
        return ", ".join(f"{r['index']} {r['setting']}".strip() for r in chosen) or "none"

    verdict = "meets" if any(r in met for r in picked) else "misses"
    print(
        f"\nAt {largest:,} items, recall@10 ≥ {TARGET_RECALL} with p99 < {TARGET_P99_MS} ms: "
        f"{named(met)}. The product's pick: {named(picked)} ({verdict} the target)."
    )


if __name__ == "__main__":
    main()
