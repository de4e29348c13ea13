"""New arrivals' freshness: how long after a catalog import ends the API answers every new
product with learned matches, with no retrain (the active version refreshed by a Celery worker,
embeddings.version_refresh), and the matches API's latency while the refreshes land.

    .venv/bin/python benchmarks/freshness.py [--catalogs 10000 100000 1000000]
        [--newcomers 1 10 100 1000 10000] [--rate 100] [--json FILE]

For each catalog size: a real model version is trained on the demo catalog (a backbone
pretrained for 2 epochs: its architecture, not its quality, sets the cost), then enlarged to
the catalog size with products described like the demo's, their item vectors drawn around the
demo's in the version's own space (up to 200,000 items their computed neighbours are exact; a
1M base gets them by an IVF search, recall about 0.9, in minutes instead of the whole build's
26; the anchors with curated partners are exact everywhere). Then 2 gunicorn sync workers
serve it (PostgreSQL `bench_fresh`, dropped at the end; Redis db 7 as cache and broker), a
Celery worker of its own serves the refresh queue (as docker-compose's `refresher`: on idle CPU
time only, OUTFITS_WORKER_IDLE_PRIORITY), and client threads ask for random products' matches
at `--rate` requests/s throughout. Each case imports `--newcomers` new products with new
pictures (drawn like the demo's, 128 px) with `manage.py import_catalog`'s code in this
process, and from the import's end asks through the API, every 0.5 s, for one of 20 of them
(all when fewer) in turn, and for all 20 once one answers `in_model` with matches, until each
does; then every newcomer is checked once. The latency figures are the clients' answers from
the import's end until the last sampled newcomer answered, beside those of the 10 s before
the import (the same load, nothing landing). Refreshes are requested as in production: at the
import's commit, after OUTFITS_REFRESH_DELAY_SECONDS (5 s, which the figures include). The
cases of one catalog run one after another on it.
"""

import argparse
import csv
import http.client
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from api import (
    authorization,
    machine,
    matches_path,
    reset_database,
    start_gunicorn,
    wait_until_serving,
)
from hot_swap import LOCAL_SITE, ROOT, free_port, manage
from loglog import Panel, write_loglog_svg
from snapshot_reload import Clients, latency

SAMPLE = 20
# The sample is asked every half second, one newcomer at a time (see run_case): about 2
# requests/s besides the clients' load.
POLL_SECONDS = 0.5
# Before each import, the API under the same load with nothing landing, as long as this.
QUIET_SECONDS = 10.0
EXACT_UP_TO = 200_000


def train_demo_version(folder: Path):
    """The demo catalog imported, a backbone briefly pretrained on it, a version trained."""
    from django.conf import settings
    from django.core.management import call_command

    from catalog.demo_catalog import generate_demo_catalog
    from embeddings.engine.backbone import OFFLINE_BACKBONE
    from embeddings.models import ModelVersion
    from embeddings.training import pretrain_backbone

    demo = generate_demo_catalog(folder / "demo")
    call_command("import_catalog", str(demo.products_csv), verbosity=0)
    call_command("import_outfits", str(demo.outfits_csv), verbosity=0)
    checkpoint = folder / "outfits-tiny.safetensors"
    pretrain_backbone(checkpoint, epochs=2)
    settings.OUTFITS_BACKBONE, settings.OUTFITS_PRETRAINED = OFFLINE_BACKBONE, str(checkpoint)
    call_command("train", epochs=4, verbosity=0)
    return ModelVersion.objects.get(is_active=True)


def approximate_neighbours(index, depth: int) -> np.ndarray:
    """Computed neighbours found by an IVF search per complementary category (exact for the
    anchors with curated partners): a 1M base in minutes."""
    import faiss

    table = index.empty_neighbours(depth)
    curated = np.asarray(sorted(index.scorer.partners), dtype=np.int64)
    for category, anchors in index.rows_of_category.items():
        for slot, other in enumerate(index.complements_of(category)):
            candidates = index.rows_of_category.get(other)
            if candidates is None:
                continue
            pool = np.ascontiguousarray(index.vectors[candidates])
            lists = int(4 * math.sqrt(len(candidates)))
            quantizer = faiss.IndexFlatIP(pool.shape[1])
            search = faiss.IndexIVFFlat(quantizer, pool.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
            search.train(pool[np.random.default_rng(0).permutation(len(pool))[: 40 * lists]])
            search.add(pool)
            search.nprobe = 8
            keep = min(depth, len(candidates))
            for start in range(0, len(anchors), 65536):
                chunk = anchors[start : start + 65536]
                queries = index.queries_towards(other, chunk)
                _, found = search.search(np.ascontiguousarray(queries, dtype=np.float32), keep)
                table[chunk, slot, :keep] = np.where(found >= 0, candidates[found], -1)
        mine = np.intersect1d(anchors, curated)
        if len(mine):
            table[mine] = index.neighbours_of(category, mine, depth)
    return table


def drawn_like(demo, categories: list[str], rng: np.random.Generator) -> np.ndarray:
    """Unit item vectors for products of `categories`, each drawn from a normal distribution
    with the mean and covariance of the demo's own items of its category (a random mix of
    their deviations from the mean), so that drawn items score as real products of the
    category do. Noisy copies of the demo's vectors did not: isotropic noise shrank every
    meaningful score of a copy, new pictures embedded by the model then beat the copies
    everywhere, and each newcomer entered thousands of lists (in-degree growing with the
    catalog, which no real catalog's newcomers do: on average a product is in as many lists
    as it has complementary slots times their depth, whatever the catalog's size)."""
    from embeddings.engine.index import rows_by_category

    vectors = np.empty((len(categories), demo.vectors.shape[1]), dtype=np.float32)
    for category, rows in rows_by_category(categories).items():
        own = np.asarray(demo.vectors[demo.rows_of_category[category]], dtype=np.float64)
        mean, deviations = own.mean(axis=0), own - own.mean(axis=0)
        mix = rng.standard_normal((len(rows), len(own))) / math.sqrt(max(len(own) - 1, 1))
        vectors[rows] = mean + mix @ deviations
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def in_degrees(index, real: int) -> str:
    """How many computed lists hold an item on average: the demo's own (real) items and the
    drawn ones; near equal when the drawing is fair to new pictures."""
    listed = np.asarray(index.neighbours).ravel()
    counts = np.bincount(listed[listed >= 0], minlength=len(index.skus))
    return (
        f"in lists on average: real items {counts[:real].mean():.0f}, "
        f"drawn {counts[real:].mean():.0f}"
    )


def enlarge(version, total: int, seed: int) -> list[str]:
    """The active version, enlarged to `total` items: new catalog products described like the
    demo's (no picture: their vectors are given), their vectors drawn around the demo items'.
    Written as a new version and activated; returns the SKUs of the catalog."""
    from django.conf import settings

    from catalog.changes import current_generation
    from catalog.models import Product
    from embeddings.engine.artifacts import ModelVersionWriter, read_manifest
    from embeddings.engine.index import CompatibilityIndex, build_category_index, rows_by_category
    from embeddings.models import ModelVersion
    from embeddings.version_refresh import inherited_facts, link_model_files, write_fingerprints
    from embeddings.versions import activate

    rng = np.random.default_rng(seed)
    served = Path(settings.OUTFITS_MODEL_DIR) / version.directory
    demo = CompatibilityIndex.load(served)
    models = {p.sku: p for p in Product.objects.select_related("category")}
    extra = total - len(demo.skus)
    started = time.perf_counter()
    like = rng.integers(0, len(demo.skus), size=extra)
    products = [
        Product(
            sku=f"BASE-{n:07d}",
            title=f"{models[demo.skus[row]].title} {n}",
            category=models[demo.skus[row]].category,
            colour=models[demo.skus[row]].colour,
            attributes=models[demo.skus[row]].attributes,
        )
        for n, row in enumerate(like.tolist())
    ]
    Product.objects.bulk_create(products, batch_size=5000)
    as_of = current_generation()
    print(f"  {extra:,} products in {time.perf_counter() - started:.0f} s", flush=True)

    started = time.perf_counter()
    categories = [*demo.categories, *(demo.categories[row] for row in like.tolist())]
    vectors = np.concatenate([demo.vectors, drawn_like(demo, categories[len(demo.skus) :], rng)])
    skus = [*demo.skus, *(p.sku for p in products)]
    rows = rows_by_category(categories)
    index = CompatibilityIndex(
        skus,
        categories,
        vectors,
        {category: build_category_index(vectors[r], r) for category, r in rows.items()},
        demo.complements,
        demo.scorer,  # the demo's rows come first: its curated pairs keep their rows
    )
    depth = demo.neighbours.shape[2]
    exact = total <= EXACT_UP_TO
    index.neighbours = (
        index.computed_neighbours(depth) if exact else approximate_neighbours(index, depth)
    )
    print(
        f"  index of {total:,} ({'exact' if exact else 'IVF'} neighbours) in "
        f"{time.perf_counter() - started:.0f} s; {in_degrees(index, len(demo.skus))}",
        flush=True,
    )
    name = f"{version.name}-x{total}"
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        index.save(writer.directory)
        write_fingerprints(writer.directory, list(models.values()) + products, as_of)
        link_model_files(served, writer.directory)  # the trained version's head, probe, top
        facts = inherited_facts(read_manifest(served, verify_checksums=False))
        directory = writer.commit(**facts | {"item_count": total})
    enlarged = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone=version.backbone,
        pretrained=version.pretrained,
        manifest=read_manifest(directory, False),
    )
    activate(enlarged)
    return skus


def newcomers_csv(folder: Path, count: int, tag: str, categories: int, seed: int) -> Path:
    """`count` new products with new pictures, drawn like the demo's, in an import CSV."""
    from catalog.demo_catalog import generate_demo_catalog

    drawn = generate_demo_catalog(
        folder / tag,
        products_per_category=max(4, math.ceil(count / categories)),
        outfit_count=1,
        seed=seed,
    )
    with drawn.products_csv.open() as handle:
        rows = list(csv.DictReader(handle))[:count]
    target = drawn.products_csv.with_name("newcomers.csv")
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for n, row in enumerate(rows):
            writer.writerow(row | {"sku": f"{tag}-{n:05d}", "title": f"{row['title']} ({tag})"})
    return target


def learned(connection: http.client.HTTPConnection, sku: str, header: str) -> bool:
    connection.request("GET", matches_path(sku), headers={"Authorization": header})
    response = connection.getresponse()
    data = json.loads(response.read() or b"{}")
    return response.status == 200 and bool(data.get("in_model")) and bool(data.get("groups"))


def lists_entered(skus: list[str]) -> int:
    """How many lists of the products already there hold one of `skus` in the active version:
    the refresh's output, which a fair catalog keeps near len(skus) × slots × depth at most."""
    from django.conf import settings

    from embeddings.engine.index import CompatibilityIndex
    from embeddings.models import ModelVersion

    directory = ModelVersion.objects.get(is_active=True).directory
    index = CompatibilityIndex.load(Path(settings.OUTFITS_MODEL_DIR) / directory)
    new = np.zeros(len(index.skus) + 1, dtype=bool)  # the last: a list's empty places (-1)
    new[[index.row_of_sku[sku] for sku in skus if sku in index.row_of_sku]] = True
    entered = 0
    for start in range(0, len(index.skus), 65536):
        lists = np.asarray(index.neighbours[start : start + 65536])
        holds = new[lists].any(axis=(1, 2)) & ~new[start : start + len(lists)]
        entered += int(holds.sum())
    return entered


def run_case(port: int, header: str, clients: Clients, count: int, tag: str, folder: Path, seed):
    from django.core.management import call_command

    from catalog.models import Category
    from embeddings.models import VersionRefresh

    source = newcomers_csv(folder, count, tag, Category.objects.count(), seed)
    with source.open() as handle:
        skus = [row["sku"] for row in csv.DictReader(handle)]
    latest = VersionRefresh.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    quiet_from = clients.now()
    time.sleep(QUIET_SECONDS)  # the same load with nothing landing: the baseline of this run
    quiet = [a for a in clients.answers if quiet_from <= a[0] <= clients.now()]
    imported_at = time.monotonic()
    call_command("import_catalog", str(source), verbosity=0)
    ended, ended_wall = time.monotonic(), time.time()
    ended_at = clients.now()
    sample = random.Random(seed).sample(skus, min(SAMPLE, count))
    seen: dict[str, float] = {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    round_ = 0
    while len(seen) < len(sample) and time.monotonic() - ended < 900:
        asked = time.monotonic()
        waiting = [sku for sku in sample if sku not in seen]
        # One newcomer a round, in turn, and once one answers every other still waiting: a
        # refresh lands them together. (Asking all 20 every round added 40 requests/s to the
        # clients' 100 while the refresh ran, and the latency measured it.)
        if learned(connection, waiting[round_ % len(waiting)], header):
            for sku in waiting:
                if learned(connection, sku, header):
                    seen[sku] = time.monotonic() - ended
        round_ += 1
        time.sleep(max(0.0, asked + POLL_SECONDS - time.monotonic()))
    landed_at = clients.now()
    answered = sum(learned(connection, sku, header) for sku in skus)
    refreshes = [
        {
            "added": refresh["added"],
            "seconds": refresh["seconds"],
            "stages": refresh["stages"],
            # when it ran, in seconds from the import's end: beside `slow` below
            "from_s": round(refresh["started_at"].timestamp() - ended_wall, 2),
            "to_s": round(refresh["finished_at"].timestamp() - ended_wall, 2),
        }
        for refresh in VersionRefresh.objects.filter(pk__gt=latest, status="succeeded").values(
            "added", "seconds", "stages", "started_at", "finished_at"
        )
    ]
    window = [a for a in clients.answers if ended_at <= a[0] <= landed_at]
    times = sorted(seen.values())
    entered = lists_entered(skus)
    return {
        "newcomers": count,
        "import_seconds": round(ended - imported_at, 1),
        "learned_median_s": round(statistics.median(times), 2) if times else None,
        "learned_max_s": round(times[-1], 2) if times else None,
        "sampled": len(sample),
        "all_answered": answered,
        "refreshes": refreshes,
        "lists_entered": entered,
        "api_quiet": latency(quiet) if quiet else None,
        "api_while_landing": latency(window) if window else None,
        # the answers slower than 25 ms: (seconds from the import's end, milliseconds)
        "slow": [
            (round(t - ended_at, 2), round(1000 * s, 1)) for t, s, _, _ in window if s > 0.025
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--newcomers", type=int, nargs="+", default=[1, 10, 100, 1000, 10000])
    parser.add_argument(
        "--each", type=int, default=1000, help="newcomers on catalogs but the middle one"
    )
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_fresh")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, help="where to draw the figures (two SVG files)")
    parser.add_argument("--plot-from", type=Path, help="only draw them, from an earlier --json")
    parser.add_argument("--one-catalog", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one_catalog:  # a child: one catalog, its own Django set-up
        results = run_catalog(options.catalogs[0], options.newcomers, options)
        options.json.write_text(json.dumps(results))
        return
    if options.plot_from:
        plot(json.loads(options.plot_from.read_text())["cases"], options.each, options.plot)
        return
    about = machine()
    results: list[dict] = []
    for position, catalog in enumerate(options.catalogs):
        middle = position == len(options.catalogs) // 2
        counts = options.newcomers if middle else [options.each]
        print(f"catalog of {catalog:,}: newcomers {counts}", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as output:
            subprocess.run(
                [sys.executable, __file__, "--one-catalog", "--catalogs", str(catalog),
                 "--newcomers", *map(str, counts), "--rate", str(options.rate),
                 "--clients", str(options.clients), "--postgres", options.postgres,
                 "--database", options.database, "--json", output.name],
                check=True,
            )  # fmt: skip
            results += json.loads(Path(output.name).read_text())
        if options.json:
            options.json.write_text(json.dumps({"machine": about, "cases": results}, indent=2))
    if options.plot:
        plot(results, options.each, options.plot)
    print(
        f"\n{about['date']} · {about['cpu']} · {about['cores']} cores · 2 gunicorn sync workers, "
        f"1 Celery worker (refresh queue) · {options.rate:g} requests/s · code {about['code']}"
    )
    print(
        "\n| catalog | newcomers | learned median s | learned max s | all answered | "
        "refresh s | lists entered | API p50 ms quiet / landing | p99 ms quiet / landing | "
        "max ms | non-200 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in results:
        api, quiet = case["api_while_landing"] or {}, case["api_quiet"] or {}
        seconds = " + ".join(f"{r['seconds']:.1f}" for r in case["refreshes"])
        print(
            f"| {case['catalog']:,} | {case['newcomers']:,} | {case['learned_median_s']} | "
            f"{case['learned_max_s']} | {case['all_answered']:,} | {seconds} | "
            f"{case.get('lists_entered', '')} | "
            f"{quiet.get('p50_ms')} / {api.get('p50_ms')} | "
            f"{quiet.get('p99_ms')} / {api.get('p99_ms')} | {api.get('max_ms')} | "
            f"{api.get('non_200')} |"
        )


COLOURS = {"every newcomer answered": "#1f77b4", "refresh (worker)": "#ff7f0e"}


def plot(results: list[dict], each: int, path: Path) -> None:
    """Seconds until every newcomer is answered, and the refresh's own, against the catalog's
    size for `each` newcomers (path) and against the newcomers on the middle catalog
    (path's name + _newcomers)."""

    def lines(cases: list[dict], key: str) -> dict[str, dict[int, float]]:
        return {
            "every newcomer answered": {c[key]: c["learned_max_s"] for c in cases},
            "refresh (worker)": {c[key]: sum(r["seconds"] for r in c["refreshes"]) for c in cases},
        }

    sizes = [c for c in results if c["newcomers"] == each]
    catalogs = sorted({c["catalog"] for c in results})
    middle = [c for c in results if c["catalog"] == catalogs[len(catalogs) // 2]]
    target = (60.0, "60 s")  # the target for 1,000 newcomers
    write_loglog_svg(
        [Panel(f"{each:,} newcomers: seconds by catalog size", lines(sizes, "catalog"), target)],
        COLOURS,
        path,
    )
    title = f"catalog of {middle[0]['catalog']:,}: seconds by newcomers"
    write_loglog_svg(
        [Panel(title, lines(middle, "newcomers"), target)],
        COLOURS,
        path.with_name(f"{path.stem}_newcomers{path.suffix}"),
    )


def run_catalog(catalog: int, counts: list[int], options) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    env = {
        k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DJANGO_DEBUG"}
    } | {
        "DATABASE_URL": f"{options.postgres}/{options.database}",
        "OUTFITS_VAR_DIR": str(folder),
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/7",
        "OUTFITS_REFRESH_QUEUE": f"refresh-bench-{uuid.uuid4().hex[:6]}",
        # As docker-compose's refresher: the refresh queue's own worker, on idle CPU time only.
        "OUTFITS_WORKER_IDLE_PRIORITY": "true",
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "LOG_LEVEL": "WARNING",
        **LOCAL_SITE,
    }
    results = []
    server = worker = None
    try:
        reset_database(options.postgres, options.database, create=True)
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        started = time.perf_counter()
        version = train_demo_version(folder)
        print(f"  demo version trained in {time.perf_counter() - started:.0f} s", flush=True)
        skus = enlarge(version, catalog, seed=catalog)
        header = authorization(f"benchmarks/freshness.py {uuid.uuid4().hex[:6]}")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "outfits", "worker", "--pool", "solo",
             "-Q", env["OUTFITS_REFRESH_QUEUE"], "--loglevel", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        port = free_port()
        server = start_gunicorn(env, "sync", options, port)
        wait_until_serving(server, f"http://127.0.0.1:{port}{matches_path(skus[0])}", header)
        time.sleep(10)  # the activation's own refresh (nothing changed) out of the way
        with Clients(port, skus, header, options.clients, options.rate) as clients:
            time.sleep(5)
            for number, count in enumerate(counts):
                tag = f"NEW{number}x{count}"
                case = run_case(port, header, clients, count, tag, folder, seed=number)
                results.append({"catalog": catalog} | case)
                print(f"  {json.dumps(results[-1])}", flush=True)
    finally:
        for process in (server, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        reset_database(options.postgres, options.database, create=False)
        shutil.rmtree(folder, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
