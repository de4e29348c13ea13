"""Hot swap under load: the matches API served by gunicorn (2 workers) while model versions are
activated back and forth, against the same load with no activation, in one run.

    .venv/bin/python benchmarks/hot_swap.py [--seconds 20] [--clients 4] [--swap-every 2]

It builds the demo shop in a fresh folder (SQLite, a briefly pretrained offline backbone) with
two model versions, then loads the API from client threads in this process: first steady,
then while a version is activated every `--swap-every` seconds. It reports requests/s,
p50/p99/max latency, failed requests, and how many answers each version gave.
"""

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The site's processes a benchmark starts run as a local install (plain HTTP on 127.0.0.1), on
# PostgreSQL too, where the settings would otherwise require production's own secret key.
LOCAL_SITE = {"OUTFITS_PRODUCTION": "false", "DJANGO_SECRET_KEY": "benchmarks-only-" + "x" * 40}


def manage(env: dict[str, str], *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(url: str, skus: list[str], clients: int, seconds: float, during=None) -> dict:
    """`clients` threads asking for random products' matches for `seconds`; `during()` runs
    meanwhile in this thread (the swapping)."""
    latencies: list[float] = []
    failures: list[str] = []
    versions: dict[str, int] = {}
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                path = f"/api/v1/products/{random.choice(skus)}/matches/"
                with urllib.request.urlopen(url + path, timeout=30) as response:
                    version = json.loads(response.read())["model_version"]
                latencies.append(time.perf_counter() - started)
                versions[version] = versions.get(version, 0) + 1
            except Exception as error:  # noqa: BLE001 - every failure is counted
                failures.append(repr(error))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    if during:
        during(seconds)
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begun
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
        "failed": len(failures),
        "answers_by_version": versions,
        "first_failures": failures[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--swap-every", type=float, default=2)
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hot-swap-"))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}
    } | {"OUTFITS_VAR_DIR": str(folder), "DJANGO_SETTINGS_MODULE": "outfits.settings"}
    print(f"building the demo shop with two model versions in {folder} …", flush=True)
    manage(env, "setup_demo", "--pretrain-epochs", "3")
    manage(env | {"OUTFITS_ACTIVATION_MARGIN": "-1"}, "train", "--epochs", "5",
           "--unfreeze-blocks", "0")  # fmt: skip

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from catalog.models import Product
    from embeddings.models import ModelVersion
    from embeddings.versions import activate

    versions = list(ModelVersion.objects.order_by("created_at"))
    skus = list(Product.objects.filter(active=True).values_list("sku", flat=True))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "outfits.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/api/v1/products/{skus[0]}/matches/", timeout=5)
                break
            except OSError:
                time.sleep(0.3)

        def swap(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            turn = 0
            while time.monotonic() < deadline:
                activate(versions[turn % 2])
                turn += 1
                time.sleep(options.swap_every)

        steady = load(url, skus, options.clients, options.seconds)
        swapping = load(url, skus, options.clients, options.seconds, during=swap)
    finally:
        server.terminate()
        server.wait()
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores {platform.machine()}, "
        f"Python {platform.python_version()}",
        "products": len(skus),
        "clients": options.clients,
        "seconds_per_phase": options.seconds,
        "swap_every_seconds": options.swap_every,
        "steady": steady,
        "swapping": swapping,
    }
    print(json.dumps(report, indent=2))
    print("\n| phase | requests/s | p50 ms | p99 ms | max ms | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    phases = (("steady", steady), (f"activating every {options.swap_every:g} s", swapping))
    for name, r in phases:
        print(
            f"| {name} | {r['requests_per_second']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['max_ms']} | {r['failed']} |"
        )
    ratio = swapping["p99_ms"] / steady["p99_ms"]
    print(f"\np99 while swapping / steady: {ratio:.2f}×")


if __name__ == "__main__":
    main()
