"""Storefront API under load: `GET /api/v1/products/<sku>/matches/` served by gunicorn (2
workers, sync and gthread) on PostgreSQL, loaded by wrk from a separate process on loopback,
for synthetic catalogs of 10k and 100k products.

    .venv/bin/python benchmarks/api.py [--products 10000,100000] [--worker-classes sync,gthread]
        [--threads 4] [--omp-threads default] [--connections 4] [--warmup 5] [--seconds 30]
        [--computed-neighbours N]  (0: answers search the index, as for a catalog too large to
        compute them; default: the product's setting)

Each catalog size runs in a child process on a fresh PostgreSQL database (`bench_api` on
127.0.0.1:5432, trust auth; dropped at the end) and a temporary var folder: N products in 12
categories (bulk_create, no images), a model version written like a trained one (random unit
vectors, per-category FAISS indexes, random pair weights, complements and curated pairs from
synthetic outfits) and activated. When the API takes keys (`outfits.api_keys`), every run gets
a fresh key with an unreachable rate limit; throttling counts in Redis when it runs on
127.0.0.1:6379 (or REDIS_URL). wrk (2 threads, 4 keep-alive connections) asks for random
products' matches: a warm-up, then the measured run, for each worker class (and each
OMP_NUM_THREADS of the web processes asked for: FAISS's thread pool; 'default' leaves it
unset, as deployed). It reports requests/s, p50/p99/max latency, errors and non-2xx answers,
the RSS of the gunicorn master and of each worker after the run (and the worker's own part,
without the memory-mapped model files the workers share), whether the targets (p99 <
25 ms, >= 500 requests/s at 100k products) are met, and how many cores other processes kept
busy meanwhile (a shared machine's noise). Then the same load on 2 sync workers that
cProfile their requests says where a request's time goes, and requests one at a time in
this process give the unloaded latency and the SQL of one request.
"""

import argparse
import io
import json
import os
import platform
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hot_swap import LOCAL_SITE, ROOT, free_port, manage

TARGET_P99_MS = 25.0
TARGET_REQUESTS_PER_SECOND = 500.0
DIMENSIONS = 128
# name: (group, SKU prefix, share of the catalog in %)
CATEGORIES = {
    "T-shirts": ("Tops", "TSH", 12),
    "Shirts": ("Tops", "SHI", 10),
    "Knitwear": ("Tops", "KNI", 8),
    "Trousers": ("Bottoms", "TRS", 10),
    "Jeans": ("Bottoms", "JEA", 8),
    "Skirts": ("Bottoms", "SKI", 6),
    "Dresses": ("Dresses", "DRE", 12),
    "Coats": ("Outerwear", "COA", 5),
    "Jackets": ("Outerwear", "JAC", 7),
    "Shoes": ("Shoes", "SHO", 10),
    "Bags": ("Accessories", "BAG", 7),
    "Jewellery": ("Accessories", "JEW", 5),
}
COLOURS = ["Black", "White", "Navy", "Beige", "Grey", "Red", "Green", "Camel", "Pink", "Blue"]
RESULT_MARKER = "WRK-RESULT "
WRK_SCRIPT = """
-- Random products' matches: args are a file of request paths and an Authorization value.
local paths, headers, threads = {}, {}, 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  if args[2] and args[2] ~= "" then headers["Authorization"] = args[2] end
  math.randomseed(os.time() * 1000 + seed)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
""".replace("MARKER", RESULT_MARKER)


def matches_path(sku: str) -> str:
    return f"/api/v1/products/{sku}/matches/"


# --- The machine and the services ---


def ensure_wrk() -> str:
    """wrk's path; installs Debian's package when missing and root, else says how."""
    if found := shutil.which("wrk"):
        return found
    if os.geteuid() != 0:
        raise SystemExit("This benchmark needs wrk: sudo apt-get install wrk")
    print("installing wrk (apt-get) …", flush=True)
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    return shutil.which("wrk") or "wrk"


def machine() -> dict[str, str | int]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "memory_gib": round(memory_kb / 2**20),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": code_version(),
    }


def code_version() -> str:
    """The commit served, and the served packages' files changed since, if any."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True
        ).stdout.rstrip()  # not strip(): a status line starts with a space

    changed = git("status", "--porcelain", "--", "outfits", "catalog", "embeddings")
    files = [line[3:] for line in changed.splitlines()]
    return git("rev-parse", "--short", "HEAD") + (
        f" + changes to {', '.join(files)}" if files else ""
    )


def active_version():
    """Django set up and the active version with its index, for a benchmark that reads the
    served model (OUTFITS_VAR_DIR names where); exits with a message when none is active."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
    import django

    django.setup()
    from embeddings.loaded_versions import active_compatibility_index

    active = active_compatibility_index()
    if active is None:
        raise SystemExit("No active model version: train one first (manage.py train).")
    return active


def redis_url() -> str:
    """REDIS_URL, else the Redis on 127.0.0.1:6379 when one listens, else '' (the cache is
    then each process's memory)."""
    if url := os.environ.get("REDIS_URL"):
        return url
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
        return "redis://127.0.0.1:6379/0"
    except OSError:
        return ""


def reset_database(server: str, name: str, create: bool) -> None:
    """Drop the database `name` (closing its sessions) and, with `create`, make it afresh."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory; field 'RssAnon': its own (heap), without the file pages
    it shares with other processes (the memory-mapped model files every worker reads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# --- The synthetic shop (in the child process, after django.setup()) ---


def synthetic_outfits(rows_by_category: dict[str, list[int]], count: int, rng) -> list[list[int]]:
    """Outfits as stylists make them: a top and a bottom or a dress, shoes, and some of a bag,
    jewellery and a coat or jacket."""

    def one_of(*categories: str) -> int:
        return int(rng.choice(rows_by_category[str(rng.choice(categories))]))

    outfits = []
    for _ in range(count):
        if rng.random() < 0.7:
            outfit = [
                one_of("T-shirts", "Shirts", "Knitwear"),
                one_of("Trousers", "Jeans", "Skirts"),
            ]
        else:
            outfit = [one_of("Dresses")]
        outfit.append(one_of("Shoes"))
        for categories, share in (
            (("Bags",), 0.6),
            (("Jewellery",), 0.4),
            (("Coats", "Jackets"), 0.5),
        ):
            if rng.random() < share:
                outfit.append(one_of(*categories))
        outfits.append(outfit)
    return outfits


def random_pair_weights(outfits: list[list[int]], categories: list[str], rng):
    """Positive per-dimension weights with mean 1 for every pair of categories seen together."""
    import numpy as np

    from embeddings.engine.index import complementary_categories
    from embeddings.engine.space import PairWeights

    names = sorted(CATEGORIES)
    pairs = sorted(
        {
            tuple(sorted((names.index(a), names.index(b))))
            for a, others in complementary_categories(outfits, categories).items()
            for b in others
        }
    )
    weights = rng.uniform(0.2, 1.8, size=(len(pairs), DIMENSIONS)).astype(np.float32)
    return PairWeights(names, np.asarray(pairs), weights / weights.mean(axis=1, keepdims=True))


def build_shop(
    count: int, outfit_count: int, seed: int, neighbours: int | None = None
) -> list[str]:
    """`count` products in the database and an active model version that knows them all;
    returns their SKUs."""
    import numpy as np
    from django.conf import settings
    from django.utils.text import slugify

    from catalog.import_jobs import refresh_planner_statistics
    from catalog.models import Category, Product
    from embeddings.engine.artifacts import ModelVersionWriter, read_manifest
    from embeddings.engine.index import CompatibilityIndex
    from embeddings.models import ModelVersion
    from embeddings.versions import activate

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    category_of = {
        name: Category.objects.create(name=name, slug=slugify(name), group=group)
        for name, (group, _, _) in CATEGORIES.items()
    }
    shares = np.asarray([share for _, _, share in CATEGORIES.values()], dtype=float)
    names = rng.choice(list(CATEGORIES), size=count, p=shares / shares.sum()).tolist()
    colours = rng.choice(COLOURS, size=count).tolist()
    cents = rng.integers(990, 19990, size=count).tolist()
    in_stock = (rng.random(count) < 0.9).tolist()
    seasons = rng.choice(["summer", "winter", "all year"], size=count).tolist()
    products = [
        Product(
            sku=f"{CATEGORIES[name][1]}-{n:07d}",
            title=f"{colours[n]} {name.lower()} {n}",
            category=category_of[name],
            colour=colours[n],
            price=Decimal(cents[n]) / 100,
            in_stock=in_stock[n],
            attributes={"season": seasons[n]},
        )
        for n, name in enumerate(names)
    ]
    Product.objects.bulk_create(products, batch_size=5000)
    refresh_planner_statistics()  # as a catalog import does
    print(f"  {count:,} products in {time.perf_counter() - started:.1f} s", flush=True)

    started = time.perf_counter()
    skus = [p.sku for p in products]
    rows_by_category: dict[str, list[int]] = {}
    for row, name in enumerate(names):
        rows_by_category.setdefault(name, []).append(row)
    outfits = synthetic_outfits(rows_by_category, outfit_count, rng)
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pair_weights = random_pair_weights(outfits, names, rng)
    depth = settings.OUTFITS_COMPUTED_NEIGHBOURS if neighbours is None else neighbours
    index = CompatibilityIndex.build(skus, names, vectors, outfits, 1.0, pair_weights, depth)
    name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ModelVersionWriter(Path(settings.OUTFITS_MODEL_DIR), name) as writer:
        index.save(writer.directory)
        directory = writer.commit(
            backbone="synthetic (benchmarks/api.py)",
            pretrained="",
            item_count=count,
            outfit_count=len(outfits),
            compatibility_dim=DIMENSIONS,
            category_pairs_weighted=len(pair_weights),
            metrics={},
        )
    version = ModelVersion.objects.create(
        name=name,
        directory=directory.name,
        backbone="synthetic (benchmarks/api.py)",
        manifest=read_manifest(directory, False),
    )
    activate(version)
    print(
        f"  model version {name} ({len(outfits):,} outfits, {len(pair_weights)} category "
        f"pairs) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return skus


def start_experiment() -> None:
    """An A/B test of the active version against a copy of it (its own files, so each worker
    maps and pages both, as two trained versions would be), half the shoppers in each arm."""
    from django.conf import settings

    from embeddings.models import ModelVersion
    from outfits.models import Experiment

    a = ModelVersion.objects.get(is_active=True)
    root = Path(settings.OUTFITS_MODEL_DIR)
    shutil.copytree(root / a.directory, root / f"{a.directory}-b")
    b = ModelVersion.objects.create(
        name=f"{a.name}-b",
        directory=f"{a.directory}-b",
        backbone=a.backbone,
        manifest=a.manifest,
        metrics=a.metrics,
    )
    Experiment.objects.create(name="benchmarks/api.py", version_a=a, version_b=b, share_b=0.5)
    print(f"  experiment: {a.name} against a copy, half the shoppers each", flush=True)


def authorization(name: str) -> str:
    """`Api-Key <raw key>` of a fresh key that no rate limit reaches, or '' when the API takes
    no keys."""
    try:
        from outfits.api_keys import create_api_key
    except ImportError:
        return ""
    _, raw_key = create_api_key(name, requests_per_minute=1_000_000_000)
    return f"Api-Key {raw_key}"


# --- Serving and loading ---

# A gunicorn config that profiles the requests of each worker once the file START exists
# (after the warm-up), and saves the profile when the worker exits. The main thread only:
# sync workers. gunicorn keeps only the hooks of the file, not its globals: imports go inside.
PROFILING_CONFIG = """
def pre_request(worker, request):
    import cProfile
    import os

    if os.path.exists(START):
        if not hasattr(worker, "profile"):
            worker.profile = cProfile.Profile()
        worker.profile.enable()


def post_request(worker, request, environ, response):
    if hasattr(worker, "profile"):
        worker.profile.disable()


def worker_exit(server, worker):
    import os

    if hasattr(worker, "profile"):
        worker.profile.dump_stats(os.path.join(FOLDER, f"worker-{os.getpid()}.prof"))
"""
# What a worker's profile is summed up by: (label, file path ending, function name; the
# largest match counts). A function renamed since drops out of the summary.
COSTS = [
    ("whole request in Django (its WSGI handler)", "django/core/handlers/wsgi.py", "__call__"),
    ("- API key lookup", "outfits/api/authentication.py", "authenticate"),
    ("- the product(s)", "outfits/api/views.py", "active_products"),
    ("- serving snapshot check (change counter)", "outfits/serving.py", "current_snapshot"),
    ("- rate limit (one Redis EVALSHA)", "outfits/api/throttling.py", "allow_request"),
    ("- goes_well_with()", "outfits/recommendations.py", "goes_well_with"),
    ("  - active version check", "embeddings/loaded_versions.py", "active_compatibility_index"),
    (
        "  - CompatibilityIndex.candidates_each() (its computed lists)",
        "embeddings/engine/index.py",
        "candidates_each",
    ),
    ("    - FAISS search", "~", "IndexIDMap_search"),
    ("  - visible, diverse rows", "outfits/recommendations.py", "visible_diverse_rows_each"),
    ("    - diversity (MMR)", "embeddings/engine/diversity.py", "diverse_picks"),
    ("- serializing (DRF)", "rest_framework/serializers.py", "data"),
    ("- ETag (render + hash)", "outfits/api/views.py", "with_etag"),
    ("all SQL (execute + fetch)", "django/db/backends/utils.py", "execute"),
    ("all model instances built", "django/db/models/base.py", "from_db"),
]


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def service_pids() -> list[int]:
    """PostgreSQL's and Redis's processes: the benchmark's load reaches them."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in {"postgres", "redis-server"}:
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def start_gunicorn(env: dict[str, str], worker_class: str, options, port: int, *extra: str):
    command = [
        sys.executable, "-m", "gunicorn", "outfits.wsgi", "--workers", "2",
        "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        *extra,
    ]  # fmt: skip
    if worker_class == "gthread":
        command += ["--threads", str(options.threads)]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_until_serving(server: subprocess.Popen, url: str, header: str) -> dict:
    """The first answer (200) of the server; any other status is an error, at once."""
    request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{url} answered {error.code}: {error.read()[:500]!r}") from None
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.3)


def run_wrk(url: str, files: tuple[Path, Path], header: str, seconds: float, options) -> dict:
    script, paths = files
    command = [
        options.wrk, "--threads", str(options.wrk_threads), "--connections",
        str(options.connections), "--duration", f"{seconds:g}s", "--timeout", "5s",
        "--script", str(script), url, "--", str(paths), header,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith(RESULT_MARKER))
    raw = json.loads(line.removeprefix(RESULT_MARKER))
    return {
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "max_ms": round(raw["max_us"] / 1000, 1),
        "errors": sum(raw[kind] for kind in ("connect", "read", "write", "timeout")),
        "non_2xx": raw["status"],
    }


def measured_run(url: str, files, header: str, server: subprocess.Popen, options) -> dict:
    """wrk's figures, and the cores that processes other than the benchmark's (gunicorn, wrk,
    PostgreSQL, Redis) kept busy meanwhile: a shared machine's noise."""
    ours = [server.pid, *children(server.pid), *service_pids()]
    started = time.monotonic(), busy_cpu_seconds(), process_cpu_seconds(ours)
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_wrk(url, files, header, options.seconds, options)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)
    elapsed = time.monotonic() - started[0]
    busy = busy_cpu_seconds() - started[1]
    benchmark = process_cpu_seconds(ours) - started[2] + wrk
    return run | {
        "benchmark_cores": round(benchmark / elapsed, 2),
        "other_cores": round(max(busy - benchmark, 0) / elapsed, 2),
    }


def serve_and_load(
    env: dict[str, str],
    worker_class: str,
    omp: str,
    skus: list[str],
    files: tuple[Path, Path],
    options,
    gunicorn_arguments: tuple[str, ...] = (),
    before_measuring: Callable[[], object] = lambda: None,
) -> dict:
    """gunicorn with 2 `worker_class` workers (OMP_NUM_THREADS=`omp` unless 'default') under
    wrk with a fresh API key: warm-up, `before_measuring()`, the measured run, then each
    process's RSS."""
    header = authorization(f"benchmarks/api.py {worker_class} {omp} {uuid.uuid4().hex[:6]}")
    env = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
    if omp != "default":
        env["OMP_NUM_THREADS"] = omp
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_gunicorn(env, worker_class, options, port, *gunicorn_arguments)
    try:
        first = wait_until_serving(server, url + matches_path(skus[0]), header)
        print(
            f"  {worker_class}, OMP threads {omp}: {skus[0]} has {len(first['groups'])} rows "
            f"of matches; warm-up {options.warmup:g} s, then {options.seconds:g} s",
            flush=True,
        )
        run_wrk(url, files, header, options.warmup, options)
        before_measuring()
        run = measured_run(url, files, header, server, options)
        run |= {
            "worker_class": worker_class,
            "threads": options.threads if worker_class == "gthread" else 1,
            "omp_threads": omp,
            "api_key": bool(header),
            "worker_rss_mb": [rss_mb(pid) for pid in children(server.pid)],
            "worker_own_mb": [rss_mb(pid, "RssAnon") for pid in children(server.pid)],
            "master_rss_mb": rss_mb(server.pid),
        }
    finally:
        server.terminate()
        server.wait()
    print(f"  {json.dumps(run)}", flush=True)
    return run


def profile_workers(env: dict[str, str], skus: list[str], files, folder: Path, options) -> dict:
    """The same load on 2 sync workers that profile their requests after the warm-up
    (cProfile, wall clock): each cost of COSTS in ms per request, over both workers; prints
    the top functions too."""
    profiles = folder / "profiles"
    profiles.mkdir()
    config = folder / "gunicorn_profiling.py"
    start = profiles / "START"
    config.write_text(
        PROFILING_CONFIG.replace("START", repr(str(start))).replace("FOLDER", repr(str(profiles)))
    )
    run = serve_and_load(
        env, "sync", "default", skus, files, options, ("--config", str(config)), start.touch
    )
    stats = pstats.Stats(*map(str, sorted(profiles.glob("*.prof"))), stream=io.StringIO())
    costs: dict[str, list[tuple[int, float]]] = {}
    for (path, _, name), (_, calls, _, cumulative, _) in stats.stats.items():
        for label, path_end, function in COSTS:
            if path.endswith(path_end) and (name == function or name.endswith(f".{function}>")):
                costs.setdefault(label, []).append((calls, cumulative))
    requests = max(costs.get(COSTS[0][0], [(0, 0.0)]))[0]
    per_request = {
        label: round(1000 * max(c for _, c in found) / requests, 2)
        for label, *_ in COSTS
        if (found := costs.get(label)) and requests
    }
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\n  profile of 2 sync workers, {requests:,} requests (wall clock, totals):")
    print(stats.stream.getvalue())
    return {"requests": requests, "ms_per_request": per_request, "load": run}


def one_request_alone(skus: list[str], count: int = 100) -> dict:
    """Requests one at a time through Django's whole stack in this process (no server, no
    other load): the median and p99 time, and the SQL of one, each statement timed."""
    import statistics

    from django.db import connection
    from django.test import Client

    header = authorization("benchmarks/api.py alone")
    client = Client(headers={"host": "127.0.0.1", **({"authorization": header} if header else {})})
    client.get(matches_path(skus[1]))  # this process loads the index
    seconds = []
    for sku in skus[2 : 2 + count]:
        started = time.perf_counter()
        assert client.get(matches_path(sku)).status_code == 200
        seconds.append(time.perf_counter() - started)
    queries: list[tuple[float, str]] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append((1000 * (time.perf_counter() - started), sql))

    with connection.execute_wrapper(timed):
        client.get(matches_path(skus[0]))
    ordered = sorted(seconds)
    alone = {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
        "queries": len(queries),
        "sql_ms": round(sum(ms for ms, _ in queries), 2),
    }
    print(f"\n  one request alone: {json.dumps(alone)}; its SQL:")
    for milliseconds, sql in queries:
        print(f"    {milliseconds:6.2f} ms  {sql[:300]}")
    return alone


def site_env(database_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """The environment of the site's processes in a benchmark: its own database and var
    folder, no broker (tasks in-process), quiet logs."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"CELERY_BROKER_URL", "DJANGO_DEBUG"}
    } | {
        "DATABASE_URL": database_url,
        "OUTFITS_VAR_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "LOG_LEVEL": "WARNING",
        **LOCAL_SITE,
        **extra,
    }


def measure_catalog(count: int, options) -> None:
    """One catalog size, in this (child) process: fresh database and var folder, the shop, the
    load on each worker class and OMP setting, the profile, the SQL; the result as JSON into
    `options.result`."""
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = site_env(f"{options.postgres}/{options.database}", folder, REDIS_URL=redis_url())
    print(f"\n== {count:,} products (var folder {folder}) ==", flush=True)
    reset_database(options.postgres, options.database, create=True)
    try:
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connection

        skus = build_shop(count, options.outfits, count, options.computed_neighbours)
        if options.experiment:
            start_experiment()
        files = (folder / "matches.lua", folder / "paths.txt")
        files[0].write_text(WRK_SCRIPT)
        # With an A/B test, each request is a shopper of their own: half of them in arm B.
        shopper = (lambda n: f"?uid=shopper-{n}") if options.experiment else (lambda n: "")
        files[1].write_text(
            "".join(matches_path(sku) + shopper(n) + "\n" for n, sku in enumerate(skus))
        )
        runs = [
            serve_and_load(env, worker_class, omp, skus, files, options)
            for omp in options.omp_threads.split(",")
            for worker_class in options.worker_classes.split(",")
        ]
        profile = profile_workers(env, skus, files, folder, options) if options.profile else None
        result = {
            "products": count,
            "postgresql": connection.cursor().connection.info.server_version,
            "cache": "Redis" if env["REDIS_URL"] else "local memory (no Redis found)",
            "authenticated": runs[0]["api_key"],
            "experiment": options.experiment,
            "runs": runs,
            "profile": profile,
            "alone": one_request_alone(skus),
        }
        options.result.write_text(json.dumps(result))
    finally:
        from django.db import connections

        connections.close_all()
        reset_database(options.postgres, options.database, create=False)
        shutil.rmtree(folder, ignore_errors=True)


# --- The report ---


def print_report(results: list[dict], about: dict, options) -> None:
    print(json.dumps({"machine": about, "results": results}, indent=2))
    print(
        f"\n{about['date']} · {about['cpu']} · {about['cores']} cores · "
        f"{about['memory_gib']} GiB · Python {about['python']} · "
        f"PostgreSQL {results[0]['postgresql'] // 10000} · cache: {results[0]['cache']} · "
        f"{'API key' if results[0]['authenticated'] else 'no authentication'} · "
        f"wrk {options.wrk_threads} threads, {options.connections} connections, "
        f"{options.seconds:g} s after {options.warmup:g} s of warm-up · code {about['code']}"
    )
    print(
        "\n| products | gunicorn | OMP threads | requests/s | p50 ms | p99 ms | max ms | "
        "errors | RSS per worker MB (own) | master MB | p99 < 25 ms | ≥ 500 req/s | other load |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---|---:|:-:|:-:|---:|")
    for result in results:
        for run in result["runs"]:
            workers = f"2 × {run['worker_class']}"
            if run["worker_class"] == "gthread":
                workers += f" × {run['threads']} threads"
            fast = run["p99_ms"] < TARGET_P99_MS
            many = run["requests_per_second"] >= TARGET_REQUESTS_PER_SECOND
            own = run.get("worker_own_mb", run["worker_rss_mb"])
            memory = ", ".join(
                f"{mb:.0f} ({mine:.0f})" for mb, mine in zip(run["worker_rss_mb"], own, strict=True)
            )
            print(
                f"| {result['products']:,} | {workers} | {run['omp_threads']} | "
                f"{run['requests_per_second']:,.1f} | {run['p50_ms']} | {run['p99_ms']} | "
                f"{run['max_ms']} | {run['errors'] + run['non_2xx']} | "
                f"{memory} | "
                f"{run['master_rss_mb']:.0f} | {'yes' if fast else 'no'} | "
                f"{'yes' if many else 'no'} | {run['other_cores']:.2f} |"
            )
    for result in results:
        print(f"\n{result['products']:,} products:")
        for omp in options.omp_threads.split(","):
            runs = [run for run in result["runs"] if run["omp_threads"] == omp]
            best = max(runs, key=lambda r: (r["requests_per_second"], -r["p99_ms"]))
            print(
                f"- OMP threads {omp}: {best['worker_class']} serves the most "
                f"({best['requests_per_second']:,.1f} req/s, p99 {best['p99_ms']} ms)"
            )
        alone = result["alone"]
        print(
            f"- one request at a time, in-process: p50 {alone['p50_ms']} ms, p99 "
            f"{alone['p99_ms']} ms; {alone['queries']} SQL queries ({alone['sql_ms']} ms)"
        )
        if result["profile"]:
            profile = result["profile"]
            print(
                f"- where a request's time goes, 2 sync workers under the same load, cProfile "
                f"(wall clock, ms per request, {profile['requests']:,} requests, "
                f"{profile['load']['requests_per_second']} req/s while profiled):"
            )
            for label, milliseconds in profile["ms_per_request"].items():
                print(f"  {milliseconds:8.2f}  {label}")
    failed = sum(r["errors"] + r["non_2xx"] for result in results for r in result["runs"])
    if failed:
        print(f"\nFAILED OR NON-2XX REQUESTS: {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", default="10000,100000")
    parser.add_argument("--worker-classes", default="sync,gthread")
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument(
        "--omp-threads",
        default="default",
        help="OMP_NUM_THREADS of the web processes (FAISS's threads); 'default': unset",
    )
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--outfits", type=int, default=3000)
    parser.add_argument(
        "--computed-neighbours",
        type=int,
        help="depth computed per item (default: OUTFITS_COMPUTED_NEIGHBOURS, 24; 0: search)",
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--experiment",
        action="store_true",
        help="serve with an A/B test running: the active version against a copy, each request "
        "a shopper of its own (uid=)",
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_api")
    parser.add_argument("--catalog", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wrk", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.catalog:
        measure_catalog(options.catalog, options)
        return

    wrk = ensure_wrk()
    about = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-api-results-") as folder:
        for count in (int(n) for n in options.products.split(",")):
            result_file = Path(folder) / f"{count}.json"
            subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--catalog", str(count),
                 "--result", str(result_file), "--wrk", wrk],
                check=True,
            )  # fmt: skip
            results.append(json.loads(result_file.read_text()))
    print_report(results, about, options)


if __name__ == "__main__":
    main()
