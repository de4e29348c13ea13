"""Catalog ingestion benchmark: rows/s without images (10k and 100k rows), products/s with
local images (decode + store + thumbnail), and peak memory per run, against the usual Django
import (one update_or_create per row) measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--rows 10000,100000] [--image-rows 1000] [--repeats 3]
    .venv/bin/python benchmarks/ingest.py --postgres postgresql://postgres@127.0.0.1:5432/test \
        --update-rows 20000

Every measurement runs in a fresh process on a fresh SQLite database, so peak RSS is its own.
With --postgres, an import that creates --update-rows products and then one that changes every
one of them (title and price), timed apart in one process on a fresh database of that server:
the rows/s of updates against creates.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ["Tops", "Bottoms", "Dresses", "Outerwear", "Shoes", "Bags", "Jewellery"]


def write_catalog(path: Path, rows: int, image_dir: Path | None = None) -> None:
    with path.open("w") as handle:
        handle.write("sku,title,category,colour,price,in_stock,image,season\n")
        for n in range(rows):
            image = f"{n}.jpg" if image_dir else ""
            handle.write(
                f"SKU-{n:08d},Cotton shirt number {n},{CATEGORIES[n % 7]},Navy,"
                f"{10 + n % 90}.99,{'true' if n % 10 else 'false'},{image},winter\n"
            )
    if image_dir:
        from PIL import Image

        image_dir.mkdir(exist_ok=True)
        for n in range(rows):  # distinct photo-sized pictures: every row decodes and stores one
            Image.new("RGB", (600, 800), (n % 256, n // 256 % 256, 120)).save(
                image_dir / f"{n}.jpg", quality=90
            )


def worker(method: str, rows: int, with_images: bool) -> None:
    """One measurement, in this (fresh) process."""
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    os.environ.update(OUTFITS_VAR_DIR=str(work / "var"), LOG_LEVEL="WARNING")
    if method != "updates":
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    csv_path = work / "catalog.csv"
    write_catalog(csv_path, rows, work / "pictures" if with_images else None)
    if with_images:
        (work / "pictures" / "catalog.csv").write_bytes(csv_path.read_bytes())
        csv_path = work / "pictures" / "catalog.csv"

    if method == "updates":
        from catalog.import_jobs import import_file

        started = time.perf_counter()
        created = import_file("catalog", csv_path)
        create_seconds = time.perf_counter() - started
        assert created.status == "succeeded" and created.created == rows, created.message
        changed = work / "changed.csv"
        changed.write_text(
            csv_path.read_text().replace("Cotton shirt", "Linen shirt").replace(".99,", ".49,")
        )
        started = time.perf_counter()
        updated = import_file("catalog", changed)
        update_seconds = time.perf_counter() - started
        assert updated.status == "succeeded" and updated.updated == rows, updated.message
        print(json.dumps({"seconds": update_seconds, "create_seconds": create_seconds}))
        return
    started = time.perf_counter()
    if method == "project":
        from catalog.import_jobs import import_file

        job = import_file("catalog", csv_path)
        assert job.status == "succeeded" and job.created == rows, job.message
    else:
        naive_import(csv_path)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds}))


def naive_import(csv_path: Path) -> None:
    """What a first Django import usually is: csv.DictReader and update_or_create per row."""
    import csv
    from decimal import Decimal

    from catalog.models import Category, Product

    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            category, _ = Category.objects.get_or_create(name=row["category"])
            Product.objects.update_or_create(
                sku=row["sku"],
                defaults={
                    "title": row["title"],
                    "category": category,
                    "colour": row["colour"],
                    "price": Decimal(row["price"]),
                    "in_stock": row["in_stock"] == "true",
                    "attributes": {"season": row["season"]},
                },
            )


def measure(
    method: str, rows: int, with_images: bool, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one run in a child process."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", method, str(rows), str(int(with_images))],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{method} {rows} failed:\n{output}")
    measured = json.loads(output.strip().splitlines()[-1])
    global last_create_seconds
    last_create_seconds = measured.get("create_seconds", 0.0)
    return measured["seconds"], usage.ru_maxrss / 1024


last_create_seconds = 0.0


def measure_updates(server_url: str, rows: int, repeats: int) -> None:
    """Creates, then updates of every row, on a fresh database of a PostgreSQL server."""
    import psycopg

    print(
        f"# ingest benchmark, updates · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · "
        f"{platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"PostgreSQL · median of {repeats}"
    )
    base, _, _ = server_url.rpartition("/")
    runs = []
    for n in range(repeats):
        name = f"ingest_bench_{os.getpid()}_{n}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            update_seconds, _ = measure(
                "updates",
                rows,
                False,
                {**os.environ, "DATABASE_URL": f"{base}/{name}", "OUTFITS_PRODUCTION": "false"},
            )
            runs.append((last_create_seconds, update_seconds))
        finally:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    creates = statistics.median(run[0] for run in runs)
    updates = statistics.median(run[1] for run in runs)
    print("| import | rows | median s | rows/s |")
    print("|---|---:|---:|---:|")
    print(f"| creating every product | {rows:,} | {creates:.2f} | {rows / creates:,.0f} |")
    print(f"| updating every product | {rows:,} | {updates:.2f} | {rows / updates:,.0f} |")
    print(f"\nupdates vs creates: {creates / updates:.2f}× the rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--image-rows", type=int, default=1000)
    parser.add_argument("--naive-rows", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: time updates vs creates")
    parser.add_argument("--update-rows", type=int, default=20000)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        method, rows, with_images = arguments.worker
        worker(method, int(rows), bool(int(with_images)))
        return
    if arguments.postgres:
        measure_updates(arguments.postgres, arguments.update_rows, arguments.repeats)
        return

    print(
        f"# ingest benchmark · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · "
        f"{platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · SQLite · median of {arguments.repeats}"
    )
    print("| case | rows | median s | rows/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    results = {}
    cases = [("project", int(n), False) for n in arguments.rows.split(",")]
    cases += [("naive", arguments.naive_rows, False), ("project", arguments.image_rows, True)]
    for method, rows, with_images in cases:
        runs = [measure(method, rows, with_images) for _ in range(arguments.repeats)]
        seconds = statistics.median(run[0] for run in runs)
        peak = max(run[1] for run in runs)
        results[(method, rows, with_images)] = rows / seconds
        label = {"project": "chunked import job", "naive": "update_or_create per row"}[method]
        label += " + images (decode, store, thumbnail)" if with_images else ", no images"
        print(
            f"| {label} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | {peak:.0f} |",
            flush=True,
        )
    ours = results.get(("project", arguments.naive_rows, False))
    if ours:
        naive = results[("naive", arguments.naive_rows, False)]
        print(
            f"\nchunked job vs update_or_create per row at {arguments.naive_rows:,} rows: "
            f"{ours / naive:.1f}× the rows/s"
        )


if __name__ == "__main__":
    main()
