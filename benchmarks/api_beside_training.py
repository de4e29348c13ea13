"""The storefront API while a training runs beside it on the same machine: p50/p99 latency and
requests/s of `GET /api/v1/products/<sku>/matches/` (2 gunicorn sync workers under wrk, as in
benchmarks/api.py) quiet, then beside a training process at niceness 0, then beside one at
the niceness Celery workers give themselves (OUTFITS_BACKGROUND_NICENESS, outfits.cpu_priority).

    .venv/bin/python benchmarks/api_beside_training.py [--products 10000] [--seconds 20]
        [--warmup 5] [--repeats 3] [--connections 4]

The training is the project's own: `pretrain_backbone` (torch, contrastive, the offline
backbone) on a small demo catalog in a SQLite sandbox of its own, started afresh for each
measurement and measured only once it keeps the cores busy; its process lowers its priority
with the same function a Celery worker calls when it starts. The shop is benchmarks/api.py's
synthetic one on PostgreSQL (`bench_beside` on 127.0.0.1:5432, dropped at the end). The
cases are interleaved, --repeats times, on one server; it reports each case's medians, its
p99 against the quiet p99 of the same run (target: within 2×), and the cores the training
process got meanwhile.
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
import uuid
from pathlib import Path

from api import (
    WRK_SCRIPT,
    authorization,
    build_shop,
    ensure_wrk,
    machine,
    matches_path,
    measured_run,
    redis_url,
    reset_database,
    run_wrk,
    start_gunicorn,
    wait_until_serving,
)
from hot_swap import LOCAL_SITE, ROOT, free_port, manage

TARGET_P99_RATIO = 2.0
BUSY_CORES = 1.5  # a training that keeps this many cores busy has started its real work
TICKS = os.sysconf("SC_CLK_TCK")


def prepare_trainer(folder: Path) -> None:
    """In a child process: the training's sandbox (SQLite under `folder`) with a small demo
    catalog imported."""
    import django

    django.setup()
    from django.core.management import call_command

    from catalog.demo_catalog import generate_demo_catalog

    call_command("migrate", verbosity=0)
    demo = generate_demo_catalog(folder / "demo", products_per_category=20, outfit_count=60)
    call_command("import_catalog", str(demo.products_csv), verbosity=0)


def train(folder: Path) -> None:
    """In a child process: lower its priority as a Celery worker does, then pretrain until
    killed."""
    import django

    django.setup()
    from django.core.management import call_command

    from outfits.cpu_priority import lower_cpu_priority

    print(f"training at niceness {lower_cpu_priority()}", flush=True)
    call_command("pretrain_backbone", epochs=100_000, output=folder / "backbone.safetensors")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_training(env: dict[str, str], folder: Path, niceness: int) -> subprocess.Popen:
    """A training process at `niceness`, returned once it keeps BUSY_CORES cores busy."""
    trainer = subprocess.Popen(
        [sys.executable, __file__, "--train", str(folder)],
        cwd=ROOT,
        env=env | {"OUTFITS_BACKGROUND_NICENESS": str(niceness)},
        stdout=(folder / "training.log").open("a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        before = cpu_seconds(trainer.pid)
        time.sleep(1)
        if trainer.poll() is not None:
            raise SystemExit((folder / "training.log").read_text()[-3000:])
        if cpu_seconds(trainer.pid) - before >= BUSY_CORES:
            return trainer
    raise SystemExit("the training never got busy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--outfits", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_beside")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.prepare:
        return prepare_trainer(options.prepare)
    if options.train:
        return train(options.train)

    options.wrk, options.threads = ensure_wrk(), 1
    about = machine()
    folder = Path(tempfile.mkdtemp(prefix="bench-beside-"))
    unset = {"CELERY_BROKER_URL", "DJANGO_DEBUG", "DATABASE_URL", "REDIS_URL"}
    base = {k: v for k, v in os.environ.items() if k not in unset} | {
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "LOG_LEVEL": "WARNING",
        **LOCAL_SITE,
    }
    trainer_folder = folder / "training"
    trainer_folder.mkdir()
    trainer_env = base | {"OUTFITS_VAR_DIR": str(trainer_folder)}
    env = base | {
        "DATABASE_URL": f"{options.postgres}/{options.database}",
        "OUTFITS_VAR_DIR": str(folder / "web"),
        "REDIS_URL": redis_url(),
    }
    print(f"preparing the training sandbox and a {options.products:,}-product shop …")
    subprocess.run(
        [sys.executable, __file__, "--prepare", str(trainer_folder)],
        cwd=ROOT, env=trainer_env, check=True,
    )  # fmt: skip
    server = None
    try:
        reset_database(options.postgres, options.database, create=True)
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings

        background = settings.OUTFITS_BACKGROUND_NICENESS
        skus = build_shop(options.products, options.outfits, options.products)
        files = (folder / "matches.lua", folder / "paths.txt")
        files[0].write_text(WRK_SCRIPT)
        files[1].write_text("".join(matches_path(sku) + "\n" for sku in skus))
        header = authorization(f"benchmarks/api_beside_training.py {uuid.uuid4().hex[:6]}")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_gunicorn(env, "sync", options, port)
        wait_until_serving(server, url + matches_path(skus[0]), header)
        run_wrk(url, files, header, options.warmup, options)

        cases = {"quiet": None, "training, niceness 0": 0}
        cases[f"training, niceness {background} (as a Celery worker)"] = background
        runs: dict[str, list[dict]] = {case: [] for case in cases}
        for repeat in range(options.repeats):
            for case, niceness in cases.items():
                trainer = None
                if niceness is not None:
                    trainer = start_training(trainer_env, trainer_folder, niceness)
                    trainer_cpu = cpu_seconds(trainer.pid), time.monotonic()
                try:
                    run = measured_run(url, files, header, server, options)
                    if trainer:
                        cores = (cpu_seconds(trainer.pid) - trainer_cpu[0]) / (
                            time.monotonic() - trainer_cpu[1]
                        )
                        run["training_cores"] = round(cores, 2)
                finally:
                    if trainer:
                        trainer.kill()
                        trainer.wait()
                runs[case].append(run)
                print(f"  {repeat + 1}/{options.repeats} {case}: {json.dumps(run)}", flush=True)
    finally:
        if server:
            server.terminate()
            server.wait()
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        reset_database(options.postgres, options.database, create=False)
        shutil.rmtree(folder, ignore_errors=True)

    quiet_p99 = statistics.median(run["p99_ms"] for run in runs["quiet"])
    summary = {}
    for case, measured in runs.items():
        p99s = [run["p99_ms"] for run in measured]
        summary[case] = {
            "requests_per_second": statistics.median(r["requests_per_second"] for r in measured),
            "p50_ms": statistics.median(r["p50_ms"] for r in measured),
            "p99_ms": statistics.median(p99s),
            # Each repeat's p99 against the quiet p99 of the same repeat.
            "p99_vs_quiet": statistics.median(
                p99 / quiet["p99_ms"] for p99, quiet in zip(p99s, runs["quiet"], strict=True)
            ),
            "requests_per_second_vs_quiet": statistics.median(
                run["requests_per_second"] / quiet["requests_per_second"]
                for run, quiet in zip(measured, runs["quiet"], strict=True)
            ),
            "errors": sum(r["errors"] + r["non_2xx"] for r in measured),
            "training_cores": statistics.median(r.get("training_cores", 0) for r in measured),
            "other_cores": statistics.median(r["other_cores"] for r in measured),
        }
    result = {"machine": about, "options": {**vars(options), "json": None}, "cases": summary}
    print(json.dumps(result, indent=2, default=str))
    if options.json:
        options.json.write_text(json.dumps(result, indent=2, default=str))
    print(
        f"\n{about['date']} · {about['cpu']} · {about['cores']} cores · {options.products:,} "
        f"products · 2 gunicorn sync workers · wrk {options.wrk_threads} threads, "
        f"{options.connections} connections, {options.seconds:g} s × {options.repeats} "
        f"(medians) · quiet p99 {quiet_p99} ms · code {about['code']}"
    )
    print(
        "\n| case | requests/s | vs quiet | p50 ms | p99 ms | p99 vs quiet | ≤ 2× | "
        "training cores | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|:-:|---:|---:|")
    for case, figures in summary.items():
        within = figures["p99_vs_quiet"] <= TARGET_P99_RATIO
        print(
            f"| {case} | {figures['requests_per_second']:,.1f} | "
            f"{figures['requests_per_second_vs_quiet']:.2f}× | {figures['p50_ms']} | "
            f"{figures['p99_ms']} | {figures['p99_vs_quiet']:.2f}× | "
            f"{'yes' if within else 'no'} | {figures['training_cores']:.2f} | "
            f"{figures['errors']} |"
        )


if __name__ == "__main__":
    main()
