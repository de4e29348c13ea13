"""PostgreSQL killed or frozen under a running site: matches keep coming from the serving
snapshot, what needs the database answers 503 in the API's error shape (soon, not after a
hang), /readyz says not ready while /healthz stays up, and all heals once it is back.

Each test starts its own PostgreSQL (initdb in tmp_path, its own port) and a gunicorn web
process on it, and kills or freezes only that one."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, wait_for

PG_BIN = Path("/usr/local/bin")
STATEMENT_TIMEOUT_MS = 2000
CONNECT_TIMEOUT = 2  # libpq's least

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists(), reason="needs PostgreSQL's initdb and pg_ctl"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnPostgres:
    """A PostgreSQL server of the test's own: trust auth, its own port and data directory (run
    as the `postgres` user when the tests run as root, which initdb refuses)."""

    def __init__(self, directory: Path) -> None:
        self.data, self.sockets = directory / "data", directory / "sockets"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.sockets.mkdir(parents=True)
        if self.user:
            shutil.chown(directory, self.user)
            shutil.chown(self.sockets, self.user)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *arguments: str) -> None:
        done = subprocess.run(
            [str(PG_BIN / program), *arguments],
            capture_output=True,
            text=True,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            timeout=120,
        )
        assert done.returncode == 0, f"{program} {arguments}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data.parent / "pg.log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def kill(self) -> None:
        """Stop at once, as a crash would (no shutdown checkpoint, connections cut)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, background workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and parent_of(int(entry.name)) == postmaster:
                    children.append(int(entry.name))
            except OSError:
                continue
        return [postmaster, *children]

    def freeze(self) -> list[int]:
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


SEED = """
from decimal import Decimal
from django.conf import settings
from catalog.models import Category, Product
from outfits.api_keys import create_api_key
from outfits.models import Outfit, OutfitItem
from tests.outfits.conftest import ITEMS, OUTFITS, write_version

categories = {name: Category.objects.create(name=name) for name in {c for c, _ in ITEMS.values()}}
products = {
    sku: Product.objects.create(sku=sku, title=f"{category} {sku}",
                                category=categories[category], price=Decimal("10"))
    for sku, (category, _) in ITEMS.items()
}
for number, skus in enumerate(OUTFITS):
    outfit = Outfit.objects.create(external_id=f"O{number}")
    for position, sku in enumerate(skus):
        OutfitItem.objects.create(outfit=outfit, product=products[sku], position=position)
write_version(list(ITEMS), "handmade-1", settings)
print(create_api_key("faults", requests_per_minute=1_000_000)[1])
"""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Site:
    url: str
    key: str
    postgres: OwnPostgres
    server: subprocess.Popen
    log: Path

    def ask(self, path: str, data: dict | None = None, timeout: float = 30) -> Answer:
        assert self.server.poll() is None, self.log.read_text()[-3000:]
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def matches(self, sku: str) -> Answer:
        return self.ask(f"/api/v1/products/{sku}/matches/")

    def event(self, rec_id: str, sku: str) -> Answer:
        return self.ask("/api/v1/events/", {"rec_id": rec_id, "type": "click", "skus": [sku]})


@pytest.fixture
def site(tmp_path: Path, manage_py) -> Iterator[Site]:
    """Its own PostgreSQL, migrated and holding a hand-made shop, and one gunicorn sync worker
    on it (persistent connections, as deployed)."""
    # As root, the server runs as `postgres`, which cannot enter pytest's folders (pytest
    # keeps /tmp/pytest-of-root private, again at every session): a folder of its own.
    pg_dir = Path(tempfile.mkdtemp(prefix="outfits-pg-")) if os.geteuid() == 0 else tmp_path
    if pg_dir != tmp_path:
        shutil.chown(pg_dir, "postgres")
    postgres = OwnPostgres(pg_dir / "pg")
    postgres.start()
    unset = {"REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "DATABASE_URL": postgres.url,
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        "OUTFITS_DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "OUTFITS_DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
        "OUTFITS_MATCHES_PER_CATEGORY": "3",
    }
    try:
        manage_py(env, "migrate", "--noinput")
        key = manage_py(env, "shell", "-c", SEED).strip().splitlines()[-1]
        port, log = free_port(), tmp_path / "web.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "outfits.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "120"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        site = Site(f"http://127.0.0.1:{port}", key, postgres, server, log)

        def up() -> bool:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                return urllib.request.urlopen(site.url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_for(up, "the web server", timeout=60)
        yield site
    finally:
        if "server" in locals():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if postgres.data.joinpath("postmaster.pid").exists():
            postgres.thaw(postgres.pids())
            postgres.kill()
        if pg_dir != tmp_path:
            shutil.rmtree(pg_dir, ignore_errors=True)


def served(site: Site) -> dict[str, dict]:
    """Matches of some products, and that an event for one of them is recorded."""
    answers = {}
    for sku in ("T1", "P1", "S1"):
        answer = site.matches(sku)
        assert answer.status == 200, answer.body
        answers[sku] = answer.json()
    shown = answers["T1"]["groups"][0]["matches"][0]["sku"]
    recorded = site.event(answers["T1"]["rec_id"], shown)
    assert recorded.status == 201, recorded.body
    return answers


def assert_database_unavailable(answer: Answer) -> None:
    assert answer.status == 503, (answer.status, answer.body[:500])
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


def everything_answers(site: Site) -> bool:
    try:
        ready = site.ask("/readyz", timeout=10).status == 200
        return ready and bool(served(site))
    except (AssertionError, OSError):
        return False


def test_matches_keep_coming_while_postgres_is_down_and_all_heals(site: Site):
    before = served(site)
    assert site.ask("/readyz").json()["checks"]["database"]["ok"]

    site.postgres.kill()
    for _ in range(3):  # again and again: no request waits for the database
        for sku, answer in before.items():
            now = site.matches(sku)
            assert now.status == 200, now.body[:500]
            assert now.json()["groups"] == answer["groups"]
    assert_database_unavailable(site.event(before["T1"]["rec_id"], "P4"))
    ready = site.ask("/readyz")
    assert ready.status == 503
    checks = ready.json()["checks"]
    assert not checks["database"]["ok"] and checks["model"]["ok"] and checks["cache"]["ok"]
    assert site.ask("/healthz").status == 200
    page = site.ask("/products/T1/")  # a product's page: from the snapshot too
    assert page.status == 200 and b"Goes well with" in page.body, page.body[:500]
    assert before["T1"]["groups"][0]["matches"][0]["title"].encode() in page.body
    page = site.ask("/products/T1/look/")
    assert page.status == 200 and b"Complete the look" in page.body, page.body[:500]
    page = site.ask("/")  # a shop page that needs the database: a plain 503 page
    assert page.status == 503 and b"try again" in page.body and page.headers["Retry-After"]

    site.postgres.start()
    restarted = time.monotonic()
    wait_for(lambda: everything_answers(site), "everything to answer again", timeout=5)
    assert time.monotonic() - restarted < 5


def test_a_frozen_postgres_fails_requests_in_bounded_time_and_all_heals(site: Site):
    before = served(site)  # the worker holds an open connection now

    frozen = site.postgres.freeze()
    try:
        started = time.monotonic()
        answer = site.event(before["T1"]["rec_id"], "P4")
        took = time.monotonic() - started
        assert_database_unavailable(answer)
        # The statement timeout is the server's, which is frozen: the client's own deadline
        # (2 s after it) cuts the query. Generous: a loaded machine.
        assert took < STATEMENT_TIMEOUT_MS / 1000 + 15, took
        matches = site.matches("T1")  # then answers from the snapshot, without waiting
        assert matches.status == 200 and matches.json()["groups"] == before["T1"]["groups"]
        started = time.monotonic()
        assert_database_unavailable(site.event(before["T1"]["rec_id"], "P4"))
        assert time.monotonic() - started < CONNECT_TIMEOUT + 15  # a new connection times out
        assert site.ask("/readyz").status == 503
        assert site.ask("/healthz").status == 200
    finally:
        site.postgres.thaw(frozen)
    thawed = time.monotonic()
    wait_for(lambda: everything_answers(site), "everything to answer again", timeout=5)
    assert time.monotonic() - thawed < 5
