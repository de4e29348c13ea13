"""Prometheus metrics at /metrics, who may read them, and logs as JSON lines."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import ImportJob
from outfits.api_keys import create_api_key
from tests.support import ROOT, wait_for

MATCHES = "/api/v1/products/{}/matches/"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


REQUESTS = "outfits_http_requests_total"
RELOADS = "outfits_serving_snapshot_reloads_total"


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def test_requests_recommendations_throttle_and_jobs_are_counted(
    handmade_shop, storefront, client, run_import
):
    before = scrape(client)
    for _ in range(3):
        assert storefront.get(MATCHES.format("T1")).status_code == 200
    assert storefront.get(MATCHES.format("NOPE")).status_code == 404
    run_import("sku,title,category\nN1,A new top,Tops\n")
    run_import("not a catalog at all")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "api-v1:product-matches"
    assert delta("outfits_http_requests_total", route=route, method="GET", status="200") == 3
    assert delta("outfits_http_requests_total", route=route, method="GET", status="404") == 1
    assert delta("outfits_http_request_duration_seconds_count", route=route) == 4
    version = handmade_shop.version.name
    assert delta("outfits_recommendations_total", kind="matches", model_version=version) == 3
    assert delta("outfits_api_throttle_decisions_total", decision="allowed") == 4
    # Jobs from their rows: what the workers did, whichever process is scraped.
    assert value(after, "outfits_metrics_database_up") == 1
    statuses = {job.status for job in ImportJob.objects.all()}
    assert statuses == {"succeeded", "failed"}
    for status in statuses:
        assert value(after, "outfits_import_jobs", kind="catalog", status=status) == 1
        count = value(
            after, "outfits_import_job_duration_seconds_count", kind="catalog", status=status
        )
        assert count == 1


def test_only_this_machine_or_a_token_bearer_may_read_them(db, client, settings):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    # Through a proxy on this machine every request looks local: not enough.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    settings.PRODUCTION = True
    refused = client.get("/metrics")
    assert refused.status_code == 403 and b"OUTFITS_METRICS_TOKEN" in refused.content
    settings.OUTFITS_METRICS_TOKEN = "scrape-me-" * 3
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {'scrape-me-' * 3}")
    assert allowed.status_code == 200 and b"outfits_http_requests_total" in allowed.content


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(site_env, tmp_path):
    """gunicorn with 2 workers on the test's database, started as the Docker image starts it
    (gunicorn.conf.py read from the checkout): `.url`, `.log()`, `.get(path, **headers)`."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "outfits.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
        ],  # fmt: skip
        cwd=ROOT,
        env={key: v for key, v in site_env.items() if key != "PROMETHEUS_MULTIPROC_DIR"},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    class Server:
        url = f"http://127.0.0.1:{port}"
        pid = server.pid

        @staticmethod
        def log() -> str:
            return log_path.read_text()

        @staticmethod
        def get(path: str, **headers: str) -> bytes:
            request = urllib.request.Request(Server.url + path, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()

    try:
        wait_for(lambda: _answers(Server.url), "gunicorn to answer", timeout=120)
        yield Server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_scrape_sees_every_gunicorn_worker(handmade_shop, gunicorn):
    """Two workers, twenty requests: whichever worker answers a scrape, it counts all twenty
    (gunicorn.conf.py shares the counters), not its own share."""
    _, raw_key = create_api_key("metrics", [])
    for _ in range(20):
        gunicorn.get(MATCHES.format("T1"), Authorization=f"Api-Key {raw_key}")
    counts = set()
    for _ in range(6):
        scraped = samples(gunicorn.get("/metrics").decode())
        route = "api-v1:product-matches"
        counts.add(value(scraped, REQUESTS, route=route, method="GET", status="200"))
    assert counts == {20.0}, (counts, gunicorn.log()[-3000:])


def test_workers_warm_up_before_they_take_traffic(handmade_shop, gunicorn):
    """Each worker loads the snapshot and the model before its first request, a replacement
    for a killed one too: requests then never rebuild it on their way."""
    _, raw_key = create_api_key("warm", [])
    wait_for(lambda: gunicorn.log().count("warmed up in") == 2, "both workers to warm up", 60)
    assert "model version handmade-1" in gunicorn.log()

    def full_reloads() -> float:
        return value(samples(gunicorn.get("/metrics").decode()), RELOADS, kind="full")

    assert full_reloads() == 2
    pids = {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", gunicorn.log())}
    os.kill(min(pids), signal.SIGKILL)
    wait_for(lambda: gunicorn.log().count("warmed up in") == 3, "the replacement to warm up", 60)
    for _ in range(10):
        gunicorn.get(MATCHES.format("T1"), Authorization=f"Api-Key {raw_key}")
    assert full_reloads() == 3  # the two first workers and the replacement; no request's


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_logs_are_json_lines_when_asked(log_format, tmp_path):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "OUTFITS_VAR_DIR": str(tmp_path),
        "OUTFITS_LOG_FORMAT": log_format,
    }
    environment.pop("DATABASE_URL", None)
    code = (
        "import logging\n"
        "try:\n    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('outfits.test').exception('naïve %s', 7)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "naïve 7" in line)
    if log_format == "plain":
        assert "ERROR outfits.test: naïve 7" in line
        return
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "outfits.test"
    assert entry["message"] == "naïve 7" and "ZeroDivisionError" in entry["exception"]


def test_an_unknown_log_format_is_refused_saying_which_exist(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "outfits.settings",
            "OUTFITS_VAR_DIR": str(tmp_path),
            "OUTFITS_LOG_FORMAT": "xml",
        },  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "OUTFITS_LOG_FORMAT='xml': use plain" in result.stderr
