"""Faults under load: the matches API served by gunicorn (2 sync workers) while its own Redis,
then its own PostgreSQL, is killed and restarted.

    .venv/bin/python benchmarks/faults.py [--products 10000] [--clients 4] [--rate 0]
        [--steady 10] [--outage 10] [--recover 15] [--bin 0.5] [--json FILE]

It starts a PostgreSQL (initdb in a temporary folder, its own port, trust auth; as the
`postgres` user when run as root) and a Redis (`--save ''`) of its own, never the machine's
shared ones, migrates, builds a synthetic shop like benchmarks/api.py (N products, a model
version of random vectors), and serves it with Redis as the cache (API rate limits). Client
threads in this process ask for random products' matches (`--clients` keep-alive connections,
at most `--rate` requests/s in all; 0: as fast as they are answered) through the timeline:

    steady · kill Redis · outage · restart Redis · recover · kill PostgreSQL · outage ·
    restart PostgreSQL · recover

It reports the answers per second by status (or connection error) over time, each outage's
errors per second by status, and each restart's recovery time: from the restart until the
first of three bins in a row that answer 200 at 90% of the steady rate or more. JSON (to
stdout and `--json`), then a short table.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from api import authorization, build_shop, code_version, machine, matches_path
from hot_swap import LOCAL_SITE, ROOT, free_port, manage

PG_BIN = Path(os.environ.get("OUTFITS_PG_BIN", "/usr/local/bin"))
RECOVERED_SHARE = 0.9  # of the steady rate of 200s
RECOVERED_BINS = 3  # in a row


class OwnPostgres:
    def __init__(self, folder: Path) -> None:
        self.data, self.sockets = folder / "data", folder / "sockets"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        folder.mkdir(parents=True)
        self.sockets.mkdir()
        if self.user:
            for path in (folder.parent, folder, self.sockets):
                shutil.chown(path, self.user)
        self.pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, program: str, *arguments: str) -> None:
        subprocess.run(
            [str(PG_BIN / program), *arguments],
            check=True,
            stdout=subprocess.DEVNULL,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data.parent / "pg.log")
        self.pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def kill(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


class OwnRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Load:
    """Client threads asking for random products' matches; each answer noted as (seconds
    since the start, status or the connection error's name)."""

    def __init__(self, port: int, skus: list[str], header: str, clients: int, rate: float):
        self.port, self.skus, self.header = port, skus, header
        self.clients, self.rate = clients, rate
        self.answers: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def now(self) -> float:
        return time.monotonic() - self.started

    def client(self) -> None:
        interval = self.clients / self.rate if self.rate else 0.0
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_at = time.monotonic()
        while not self.stop.is_set():
            if interval:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            path = matches_path(random.choice(self.skus))
            try:
                connection.request("GET", path, headers={"Authorization": self.header})
                response = connection.getresponse()
                response.read()
                outcome = str(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
                connection.close()
                time.sleep(0.01)  # a refused connection is instant: no busy loop
            self.answers.append((self.now(), outcome))

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)


def bins(answers: list[tuple[float, str]], start: float, end: float, width: float) -> list[Counter]:
    count = max(1, int((end - start) / width + 0.999))
    out = [Counter() for _ in range(count)]
    for at, outcome in answers:
        if start <= at < end:
            out[min(count - 1, int((at - start) / width))][outcome] += 1
    return out


def per_second(counters: list[Counter], width: float) -> dict[str, float]:
    total: Counter = Counter()
    for counter in counters:
        total.update(counter)
    seconds = len(counters) * width
    return {outcome: round(n / seconds, 1) for outcome, n in sorted(total.items())}


def recovery_seconds(load: Load, restarted: float, end: float, steady: float, width: float):
    """Seconds from the restart to the first of RECOVERED_BINS bins in a row at full rate."""
    series = bins(load.answers, restarted, end, width)
    good = [counter["200"] / width >= RECOVERED_SHARE * steady for counter in series]
    for i in range(len(good) - RECOVERED_BINS + 1):
        if all(good[i : i + RECOVERED_BINS]):
            return round(i * width, 2)
    return None  # not within the observed time


def run(options) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    postgres, redis = OwnPostgres(folder / "pg"), OwnRedis()
    server = None
    try:
        postgres.start()
        redis.start()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"CELERY_BROKER_URL", "DJANGO_DEBUG"}
        } | {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "OUTFITS_VAR_DIR": str(folder / "var"),
            "DJANGO_SETTINGS_MODULE": "outfits.settings",
            **LOCAL_SITE,
            "LOG_LEVEL": "WARNING",
        }
        manage(env, "migrate")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.db import connections

        skus = build_shop(options.products, max(50, options.products // 20), 17)
        header = authorization("faults")
        connections.close_all()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "outfits.wsgi", "--workers", "2",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{matches_path(skus[0])}", headers={"Authorization": header}
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(request, timeout=30).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)

        events: list[tuple[str, float]] = []
        with Load(port, skus, header, options.clients, options.rate) as load:
            time.sleep(options.steady)
            steady_end = load.now()
            for name, service in (("redis", redis), ("postgresql", postgres)):
                events.append((f"{name} killed", load.now()))
                service.kill()
                time.sleep(options.outage)
                service.start()
                events.append((f"{name} restarted", load.now()))
                time.sleep(options.recover)
            end = load.now()
        width = options.bin
        steady_bins = bins(load.answers, 0.0, steady_end, width)
        steady_rate = per_second(steady_bins, width).get("200", 0.0)
        faults = []
        for i in range(0, len(events), 2):
            (killed, killed_at), (_, restarted_at) = events[i], events[i + 1]
            next_at = events[i + 2][1] if i + 2 < len(events) else end
            faults.append(
                {
                    "service": killed.split()[0],
                    "outage_seconds": round(restarted_at - killed_at, 2),
                    "during_outage_per_second": per_second(
                        bins(load.answers, killed_at, restarted_at, width), width
                    ),
                    "after_restart_per_second": per_second(
                        bins(load.answers, restarted_at, next_at, width), width
                    ),
                    "recovery_seconds": recovery_seconds(
                        load, restarted_at, next_at, steady_rate, width
                    ),
                }
            )
        timeline = [
            {"at": round(i * width, 2), **counter}
            for i, counter in enumerate(bins(load.answers, 0.0, end, width))
        ]
        return {
            "products": options.products,
            "clients": options.clients,
            "rate_limit": options.rate or None,
            "steady_per_second": per_second(steady_bins, width),
            "faults": faults,
            "events": [{"event": name, "at": round(at, 2)} for name, at in events],
            "timeline": timeline,
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        redis.kill()
        if postgres.running():
            postgres.kill()
        shutil.rmtree(folder, ignore_errors=True)


def print_table(result: dict) -> None:
    print(f"\nsteady: {result['steady_per_second']} answers/s")
    print(f"{'fault':<12} {'outage s':>9} {'during outage /s':<40} {'recovered in s':>15}")
    for fault in result["faults"]:
        during = ", ".join(f"{k}: {v}" for k, v in fault["during_outage_per_second"].items())
        recovered = fault["recovery_seconds"]
        shown = "not yet" if recovered is None else f"{recovered:.1f}"
        print(f"{fault['service']:<12} {fault['outage_seconds']:>9.1f} {during:<40} {shown:>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s in all; 0: no cap")
    parser.add_argument("--steady", type=float, default=10.0)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--recover", type=float, default=15.0)
    parser.add_argument("--bin", type=float, default=0.5, help="seconds per timeline bin")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    result = {"machine": machine(), "code": code_version(), **run(options)}
    text = json.dumps(result, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text)
    print_table(result)


if __name__ == "__main__":
    main()
