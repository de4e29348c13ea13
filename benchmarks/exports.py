"""Matches outside the site at catalog scale: the batch endpoint (100 SKUs a call) and
`manage.py export_matches` over every product, on the synthetic catalog of benchmarks/api.py.

    .venv/bin/python benchmarks/exports.py [--products 100000] [--calls 50] [--results F]

On a fresh PostgreSQL database (`bench_exports` on 127.0.0.1:5432, dropped at the end) and a
temporary var folder: N products with a season attribute and an active model version (random
vectors, computed neighbours, as api.py builds them). Then:

- `POST /api/v1/matches/batch/` with 100 random SKUs, through Django's whole stack in this
  process (authentication, serializers, JSON; no HTTP server), warmed up as a web worker is
  (outfits.warm_up), `--calls` times: median and p99,
  plain and with an attribute filter and a boost (one query for all the candidates
  attributes). Target: under 50 ms for 100 SKUs at 100k products.
- The assortment-gap report of the whole catalog (outfits.gaps, the admin page's work).
- `manage.py export_matches` (JSON Lines, then CSV) of every active product, in a child
  process whose resident memory is read every half second: the wall time, and the RSS after
  the first tenth of the products and at the end (flat memory: the end no higher than the
  start plus a little). Target: under 2 minutes at 100k products.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from api import (  # noqa: E402
    ROOT,
    authorization,
    build_shop,
    code_version,
    machine,
    reset_database,
    rss_mb,
    site_env,
)
from hot_swap import manage  # noqa: E402

TARGET_BATCH_MS = 50.0
TARGET_EXPORT_SECONDS = 120.0


def timed_batches(skus: list[str], calls: int, body_extra: dict, seed: int) -> dict:
    """Median and p99 of `calls` batch requests of 100 random SKUs each."""
    import random

    from django.test import Client

    header = authorization("benchmarks/exports.py")
    client = Client(headers={"host": "127.0.0.1", "authorization": header})
    rng = random.Random(seed)

    def call() -> float:
        body = {"skus": rng.sample(skus, 100), **body_extra}
        started = time.perf_counter()
        response = client.post("/api/v1/matches/batch/", body, content_type="application/json")
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == 100
        return seconds

    call()  # the first makes the arrays of the products by the version's rows (row_facts)
    times = sorted(call() for _ in range(calls))
    return {
        "calls": calls,
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p99_ms": round(1000 * times[int(0.99 * (len(times) - 1))], 1),
    }


def timed_gap_report(runs: int = 3) -> dict:
    """The assortment-gap report of the whole catalog (the admin page's work), `runs` times."""
    from outfits.gaps import assortment_gaps

    seconds, report = [], None
    for _ in range(runs):
        started = time.perf_counter()
        report = assortment_gaps()
        seconds.append(time.perf_counter() - started)
    assert report is not None
    return {
        "median_seconds": round(statistics.median(seconds), 2),
        "products_checked": report.products_checked,
        "gaps": len(report.gaps),
        "category_pairs": len(report.coverage),
    }


def timed_export(env: dict[str, str], file_format: str, folder: Path, count: int) -> dict:
    """export_matches in a child process: wall time, RSS early and at the end, file size."""
    output = folder / f"matches.{file_format}"
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "export_matches",
        f"--format={file_format}",
        f"--output={output}",
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    while child.poll() is None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            samples.append((time.perf_counter() - started, rss_mb(child.pid)))
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    _, errors = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"export_matches failed: {errors[-2000:]}")
    progress = [line for line in errors.splitlines() if line.startswith("exported ")]
    peak = max(rss for _, rss in samples) if samples else 0.0
    early = [rss for t, rss in samples if t >= 0.1 * seconds]
    return {
        "format": file_format,
        "products": count,
        "seconds": round(seconds, 1),
        "products_per_second": round(count / seconds),
        "rss_mb_after_a_tenth": early[0] if early else None,
        "rss_mb_at_the_end": samples[-1][1] if samples else None,
        "rss_mb_peak": peak,
        "file_mb": round(output.stat().st_size / 2**20, 1),
        "last_progress_line": progress[-1] if progress else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_exports")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "exports_benchmark.json")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    env = site_env(f"{options.postgres}/{options.database}", folder)
    reset_database(options.postgres, options.database, create=True)
    try:
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        skus = build_shop(options.products, options.products // 10, options.products)
        from outfits.warm_up import warm_up

        warm_up()  # as a web worker starts: the snapshot and index loaded, the snapshot frozen
        batch = {
            "plain": timed_batches(skus, options.calls, {}, seed=1),
            "attributes and boost": timed_batches(
                skus, options.calls, {"attributes": "season:summer", "boost": "new_arrivals"}, 2
            ),
        }
        print(json.dumps(batch), flush=True)
        gaps = timed_gap_report()
        print(json.dumps(gaps), flush=True)
        exports = [timed_export(env, f, folder, len(skus)) for f in ("jsonl", "csv")]
        for measured in exports:
            print(json.dumps(measured), flush=True)
        result = {
            "machine": machine(),
            "code": code_version(),
            "products": len(skus),
            "batch_of_100": batch,
            "batch_target_ms": TARGET_BATCH_MS,
            "gap_report": gaps,
            "exports": exports,
            "export_target_seconds": TARGET_EXPORT_SECONDS,
        }
        options.results.write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
    finally:
        from django.db import connections

        connections.close_all()
        reset_database(options.postgres, options.database, create=False)
        shutil.rmtree(folder, ignore_errors=True)  # the exports alone: 1.4 GB at 100k


if __name__ == "__main__":
    main()
