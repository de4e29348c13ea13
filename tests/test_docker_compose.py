"""docker-compose.yml, run without Docker: every service's command and healthcheck, with the
environment the file and the Dockerfile give it, against this machine's PostgreSQL (a database
of the test's own) and Redis (a database number the test claims), so the file cannot drift
from the code. Only the hosts and paths change: postgres → 127.0.0.1, redis → 127.0.0.1,
/app → the checkout, /app/var → a temporary folder, the web port → a free one."""

import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, wait_for

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("migrate", "web", "worker", "refresher", "beat", "fanout")
# The operator's shell: the secret key compose requires, and a TLS proxy in front.
SHELL = {
    "DJANGO_SECRET_KEY": "compose-test-" + "not-secret-" * 5,
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
REDIS_DATABASES = range(8, 15)  # tried in turn for one that is empty; never flushed if not


def interpolate(value: Any, shell: Mapping[str, str]) -> Any:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X-default}, ${X:?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, shell) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, shell) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg, current = match.group("op"), match.group("arg"), shell.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?") and not current:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def dockerfile_environment() -> dict[str, str]:
    """The image's ENV, which every service's container starts with."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    environment: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            environment.update(item.split("=", 1) for item in shlex.split(line[4:]))
    return environment


def compose_file(shell: Mapping[str, str]) -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), shell)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def local_postgres() -> Iterator[str]:
    """A fresh database on the local server (the URL of the tests' own, another name)."""
    import psycopg

    if not reachable(5432):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432")
    base = urllib.parse.urlsplit(
        os.environ.get("OUTFITS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    name = f"compose_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = base._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def local_redis() -> Iterator[int]:
    """A Redis database number nobody uses (empty, claimed with a key of its own); only the
    keys this test's processes wrote there are deleted afterwards."""
    import redis

    if not reachable(6379):
        pytest.skip("needs Redis on 127.0.0.1:6379")
    claim = f"outfits-compose-test-{os.getpid()}"
    for number in REDIS_DATABASES:
        client = redis.Redis(host="127.0.0.1", port=6379, db=number)
        if client.dbsize() == 0 and client.set(claim, "1", nx=True) and client.dbsize() == 1:
            try:
                yield number
            finally:
                keys = client.keys("*")
                if keys:
                    client.delete(*keys)  # all written since the claim, by this test
                client.close()
            return
        client.close()
    pytest.skip(f"no empty Redis database among {list(REDIS_DATABASES)}")


class Services:
    """The compose file's app services as local processes."""

    def __init__(self, compose: dict, database_url: str, redis_db: int, var: Path) -> None:
        self.compose, self.var, self.port = compose, var, free_port()
        self.database_url, self.redis_db = database_url, redis_db
        self.processes: dict[str, subprocess.Popen] = {}

    def localise(self, value: str) -> str:
        """The container's hosts and paths → this machine's."""
        compose_url = urllib.parse.urlsplit(value)
        if compose_url.scheme.startswith("postgres"):
            return self.database_url
        if compose_url.scheme == "redis":
            assert compose_url.hostname == "redis", value
            return f"redis://127.0.0.1:6379/{self.redis_db}"
        return (
            value.replace("/app/var", str(self.var))
            .replace("/app/staticfiles", str(self.var / "staticfiles"))
            .replace("0.0.0.0:8000", f"127.0.0.1:{self.port}")
            .replace("'localhost', 8000", f"'localhost', {self.port}")
        )

    def environment(self, service: str) -> dict[str, str]:
        image = dockerfile_environment() if service in APP_SERVICES else {}
        declared = {**image, **self.compose["services"][service].get("environment", {})}
        environment = {
            name: self.localise(str(value if value is not None else SHELL[name]))
            for name, value in declared.items()
            if value is not None or name in SHELL  # unset unless the shell sets it
        }
        bin_dir = str(Path(sys.executable).parent)
        return {
            **environment,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(self.var),
            "HOSTNAME": self.hostname(service),
        }

    def hostname(self, service: str) -> str:
        """Each container has a host name of its own; here the services share one machine."""
        return f"{service}.{socket.gethostname()}"

    def argv(self, service: str, command: str | list[str]) -> list[str]:
        words = shlex.split(command) if isinstance(command, str) else command
        argv = [self.localise(word) for word in words]
        if argv[:4] == ["celery", "-A", "outfits", "worker"]:
            argv += ["--hostname", f"celery@{self.hostname(service)}"]  # celery@<its host>
        return argv

    def run(self, service: str, command: str | list[str], timeout: float = 60):
        return subprocess.run(
            self.argv(service, command),
            cwd=ROOT,
            env=self.environment(service),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, service: str) -> subprocess.Popen:
        log = (self.var / f"{service}.log").open("w")
        self.processes[service] = subprocess.Popen(
            self.argv(service, self.compose["services"][service]["command"]),
            cwd=ROOT,
            env=self.environment(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self.processes[service]

    def log(self, service: str) -> str:
        return (self.var / f"{service}.log").read_text()[-3000:]

    def healthcheck(self, service: str) -> subprocess.CompletedProcess:
        kind, *rest = self.compose["services"][service]["healthcheck"]["test"]
        command = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
        return self.run(service, command, timeout=30)

    def healthy(self, service: str) -> bool:
        assert self.processes[service].poll() is None, f"{service} exited:\n{self.log(service)}"
        return self.healthcheck(service).returncode == 0

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_compose_requires_a_secret_key_and_migrates_once_before_the_rest():
    with pytest.raises(ValueError, match="DJANGO_SECRET_KEY is missing a value"):
        compose_file({})
    services = compose_file(SHELL)["services"]
    assert set(APP_SERVICES) <= set(services)
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        service = services[name]
        assert service["environment"]["DJANGO_SECRET_KEY"] == SHELL["DJANGO_SECRET_KEY"]
        if name == "migrate":
            continue
        assert "migrate" not in str(service["command"]), f"{name} must not migrate"
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "healthcheck" in service, f"{name} has no healthcheck"
    assert all("healthcheck" in services[name] for name in ("postgres", "redis"))


def test_every_service_runs_its_command_and_passes_its_healthcheck(
    local_postgres, local_redis, tmp_path
):
    import psycopg

    started = time.monotonic()
    services = Services(compose_file(SHELL), local_postgres, local_redis, tmp_path)
    try:
        migrate = services.run("migrate", services.compose["services"]["migrate"]["command"])
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        with psycopg.connect(local_postgres) as connection:
            applied = connection.execute("SELECT count(*) FROM django_migrations").fetchone()
        assert applied[0] > 10

        for name in ("web", "worker", "refresher", "beat", "fanout"):
            services.start(name)
        wait_for(lambda: services.healthy("web"), "the web healthcheck", timeout=60, every=1)
        # Behind the TLS proxy the operator's shell names, the shop answers; plain HTTP is
        # redirected to HTTPS (production rules).
        for path, proxied, status in (
            ("/", True, 200),
            ("/admin/login/", True, 200),
            ("/", False, 301),
        ):
            client = http.client.HTTPConnection("127.0.0.1", services.port, timeout=10)
            headers = {"Host": "localhost", **({"X-Forwarded-Proto": "https"} if proxied else {})}
            client.request("GET", path, headers=headers)
            response = client.getresponse()
            body = response.read().decode()
            client.close()
            assert response.status == status, (path, proxied, body[-2000:], services.log("web"))
            assert status != 200 or "</html>" in body

        for name in ("worker", "refresher", "fanout", "beat"):
            wait_for(lambda name=name: services.healthy(name), f"{name}'s healthcheck", 60, 1)
        # Refreshes take only the CPU time the web workers leave; training does not starve.
        policy = {
            n: os.sched_getscheduler(services.processes[n].pid) for n in ("worker", "refresher")
        }
        assert policy == {"worker": os.SCHED_OTHER, "refresher": os.SCHED_IDLE}
        # The healthchecks of the images we do not build run too (on the local servers).
        for name in ("postgres", "redis"):
            result = services.healthcheck(name)
            assert result.returncode == 0, (name, result.stdout, result.stderr)
    finally:
        services.stop_all()
    assert time.monotonic() - started < 120
