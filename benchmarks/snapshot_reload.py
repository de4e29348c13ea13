"""A large catalog change landing under load: the matches API's latency while 20,000 of
100,000 products change (an update import), with the change loaded on the request path (every
change inline: the previous behaviour) and beside it (OUTFITS_SNAPSHOT_INLINE_PRODUCTS, the
default: changes of more products are loaded in a thread while requests keep the previous
snapshot).

    .venv/bin/python benchmarks/snapshot_reload.py [--products 100000] [--changed 20000]
        [--rate 100] [--clients 4] [--warmup 5] [--before 5] [--after 15] [--repeats 3]

Each case serves benchmarks/api.py's synthetic shop (PostgreSQL `bench_reload` on
127.0.0.1:5432, dropped at the end) with 2 gunicorn sync workers; client threads in this
process ask for random products' matches at a fixed total rate (`--rate` requests/s: below
the machine's limit, so latency is the service's and not a queue's). After `--warmup` seconds
(not counted) and `--before` seconds more,
this process changes `--changed` products' titles in one bulk update (one logged change, as
an import chunk's); it reports the p50/p99/max latency before and in the `--after` seconds
after the change, and when an answer first showed a changed title. The cases alternate,
`--repeats` times; medians.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from api import (
    authorization,
    build_shop,
    machine,
    matches_path,
    redis_url,
    reset_database,
    wait_until_serving,
)
from hot_swap import LOCAL_SITE, ROOT, free_port, manage

INLINE_ALWAYS = 10**9


class Clients:
    """Threads asking for random products' matches at `rate` requests/s in all; each answer
    noted as (seconds since the start, latency in seconds, status, whether it shows `marker`)."""

    def __init__(self, port: int, skus: list[str], header: str, clients: int, rate: float):
        self.port, self.skus, self.header, self.rate = port, skus, header, rate
        self.answers: list[tuple[float, float, int, bool]] = []
        self.marker = "\0"
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.threads = [
            threading.Thread(target=self.client, args=(clients,), daemon=True)
            for _ in range(clients)
        ]

    def now(self) -> float:
        return time.monotonic() - self.started

    def client(self, clients: int) -> None:
        interval = clients / self.rate
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        next_at = time.monotonic() + random.random() * interval
        while not self.stop.is_set():
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
            sent = time.monotonic()
            connection.request(
                "GET", matches_path(random.choice(self.skus)),
                headers={"Authorization": self.header},
            )  # fmt: skip
            response = connection.getresponse()
            body = response.read().decode()
            self.answers.append(
                (self.now(), time.monotonic() - sent, response.status, self.marker in body)
            )

    def __enter__(self) -> "Clients":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def latency(answers: list[tuple[float, float, int, bool]]) -> dict:
    seconds = sorted(latency for _, latency, _, _ in answers)
    return {
        "answers": len(seconds),
        "p50_ms": round(1000 * statistics.median(seconds), 1),
        "p99_ms": round(1000 * seconds[int(0.99 * (len(seconds) - 1))], 1),
        "max_ms": round(1000 * seconds[-1], 1),
        "non_200": sum(status != 200 for _, _, status, _ in answers),
    }


def measure(env: dict[str, str], inline: int, skus: list[str], round_: int, options) -> dict:
    """One case: a fresh server, the load, the change at --before s; the figures."""
    from catalog.models import Product

    header = authorization(f"benchmarks/snapshot_reload.py {uuid.uuid4().hex[:6]}")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "outfits.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env | {"OUTFITS_SNAPSHOT_INLINE_PRODUCTS": str(inline)},
    )  # fmt: skip
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}{matches_path(skus[0])}", header)
        marker = f" (round {round_}, {inline})"
        changed = Product.objects.filter(sku__in=random.sample(skus, options.changed))
        with Clients(port, skus, header, options.clients, options.rate) as clients:
            time.sleep(options.warmup + options.before)
            clients.marker = marker
            products = list(changed.only("pk", "title"))
            for product in products:
                product.title = product.title.split(" (round")[0] + marker
            changed_at = clients.now()
            Product.objects.bulk_update(products, ["title"])
            committed_at = clients.now()
            time.sleep(options.after)
        before = [a for a in clients.answers if options.warmup <= a[0] < changed_at]
        after = [a for a in clients.answers if changed_at <= a[0] < changed_at + options.after]
        shown = [at for at, _, _, seen in after if seen]
        return {
            "before": latency(before),
            "after": latency(after),
            "update_seconds": round(committed_at - changed_at, 2),
            "first_shown_after_commit_s": round(shown[0] - committed_at, 2) if shown else None,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--before", type=float, default=5)
    parser.add_argument("--after", type=float, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_reload")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()

    about = machine()
    folder = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    env = {
        k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DJANGO_DEBUG"}
    } | {
        "DATABASE_URL": f"{options.postgres}/{options.database}",
        "OUTFITS_VAR_DIR": str(folder),
        "REDIS_URL": redis_url(),
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "LOG_LEVEL": "WARNING",
        **LOCAL_SITE,
    }
    runs: dict[str, list[dict]] = {}
    try:
        reset_database(options.postgres, options.database, create=True)
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings

        default = settings.OUTFITS_SNAPSHOT_INLINE_PRODUCTS
        cases = {
            "inline (on the request path)": INLINE_ALWAYS,
            f"beside (more than {default:,} products)": default,
        }
        runs = {case: [] for case in cases}
        print(f"building a {options.products:,}-product shop …", flush=True)
        skus = build_shop(options.products, max(50, options.products // 20), 23)
        for round_ in range(options.repeats):
            for case, inline in cases.items():
                run = measure(env, inline, skus, round_, options)
                runs[case].append(run)
                print(f"  {round_ + 1}/{options.repeats} {case}: {json.dumps(run)}", flush=True)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        reset_database(options.postgres, options.database, create=False)
        shutil.rmtree(folder, ignore_errors=True)

    def median(case: str, *keys: str) -> float | None:
        values = []
        for run in runs[case]:
            value = run
            for key in keys:
                value = value[key]
            values.append(value)
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    summary = {
        case: {
            f"{when}_{figure}": median(case, when, figure)
            for when in ("before", "after")
            for figure in ("p50_ms", "p99_ms", "max_ms", "non_200")
        }
        | {
            "update_seconds": median(case, "update_seconds"),
            "first_shown_after_commit_s": median(case, "first_shown_after_commit_s"),
        }
        for case in runs
    }
    result = {"machine": about, "options": {**vars(options), "json": None}, "cases": summary}
    if options.json:
        options.json.write_text(json.dumps(result | {"runs": runs}, indent=2, default=str))
    print(
        f"\n{about['date']} · {about['cpu']} · {about['cores']} cores · "
        f"{options.products:,} products, {options.changed:,} changed · 2 gunicorn sync "
        f"workers · {options.rate:g} requests/s from {options.clients} clients · medians of "
        f"{options.repeats} · code {about['code']}"
    )
    print(
        "\n| snapshot reload | p99 before ms | p50 after ms | p99 after ms | max after ms | "
        "non-200 | change first shown after s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case, figures in summary.items():
        print(
            f"| {case} | {figures['before_p99_ms']} | {figures['after_p50_ms']} | "
            f"{figures['after_p99_ms']} | {figures['after_max_ms']} | "
            f"{figures['after_non_200']} | {figures['first_shown_after_commit_s']} |"
        )


if __name__ == "__main__":
    main()
