"""Prometheus metrics at /metrics: requests and latency per route, recommendations per model
version, API rate-limit decisions and the shared cache's fallback, serving-snapshot reloads
(counted where they happen), and import and training jobs' outcomes and durations (read from
their rows at each scrape: jobs run in Celery workers, whose counters no web process sees).

Under gunicorn the workers share their counters through files (prometheus_client's
multiprocess mode, set up by gunicorn.conf.py), so every scrape sees the whole server, not
the one worker that answered it."""

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, F, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "outfits_http_requests",
    "Requests answered, by route, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "outfits_http_request_duration_seconds",
    "Time to answer a request, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECOMMENDATIONS = Counter(
    "outfits_recommendations",
    "Answers with recommendations, by kind (matches, complete, photo) and model version.",
    ["kind", "model_version"],
)
THROTTLE_DECISIONS = Counter(
    "outfits_api_throttle_decisions",
    "API rate-limit decisions: allowed or throttled.",
    ["decision"],
)
SHARED_CACHE_FALLBACKS = Counter(
    "outfits_shared_cache_fallbacks",
    "Decisions made in process memory because Redis failed or was skipped, by what.",
    ["what"],
)
REDIS_FAILURES = Counter("outfits_redis_failures", "Calls to Redis (the shared cache) that failed.")
SNAPSHOT_RELOADS = Counter(
    "outfits_serving_snapshot_reloads",
    "Serving snapshot updates, by kind (full or changes).",
    ["kind"],
)


class JobsCollector(Collector):
    """Import jobs and training runs by status, and the time finished ones took, from the
    database at each scrape; nothing (and `outfits_metrics_database_up 0`) when it fails."""

    def collect(self) -> Iterator:
        from catalog.models import ImportJob
        from embeddings.models import TrainingRun

        database_up = GaugeMetricFamily(
            "outfits_metrics_database_up", "1: the job metrics below could be read."
        )
        try:
            families = [
                *self._jobs("import", ImportJob.objects.all(), ["kind", "status"]),
                *self._jobs("training", TrainingRun.objects.all(), ["status", "outcome"]),
            ]
        except DatabaseError as error:
            log.warning("metrics: job counts unavailable (%s)", error)
            database_up.add_metric([], 0)
            yield database_up
            return
        database_up.add_metric([], 1)
        yield database_up
        yield from families

    @staticmethod
    def _jobs(name: str, jobs, labels: list[str]) -> list:
        total = GaugeMetricFamily(
            f"outfits_{name}_jobs", f"{name.title()} jobs by state.", labels=labels
        )
        durations = SummaryMetricFamily(
            f"outfits_{name}_job_duration_seconds",
            f"Time finished {name} jobs took, from start to finish.",
            labels=labels,
        )
        for row in jobs.values(*labels).annotate(n=Count("pk")).order_by(*labels):
            total.add_metric([row[label] for label in labels], row["n"])
        finished = (
            jobs.filter(started_at__isnull=False, finished_at__isnull=False)
            .values(*labels)
            .annotate(n=Count("pk"), seconds=Sum(F("finished_at") - F("started_at")))
            .order_by(*labels)
        )
        for row in finished:
            durations.add_metric(
                [row[label] for label in labels], row["n"], row["seconds"].total_seconds()
            )
        return [total, durations]


_jobs_registry = CollectorRegistry(auto_describe=False)
_jobs_registry.register(JobsCollector())


def exposition() -> bytes:
    """Every metric in Prometheus's text format: the whole server's (all gunicorn workers')
    in multiprocess mode, else this process's, then the jobs'."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        live = CollectorRegistry()
        multiprocess.MultiProcessCollector(live)
    else:
        live = REGISTRY
    return generate_latest(live) + generate_latest(_jobs_registry)


def may_scrape(request: HttpRequest) -> bool:
    """The figures name model versions and show traffic: not for the public. With
    OUTFITS_METRICS_TOKEN set, a request bearing it. Without, a local install answers this
    machine only, and production nobody: there a proxy on the same host makes every
    request look local."""
    token = settings.OUTFITS_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), token.encode())
    if settings.PRODUCTION or "X-Forwarded-For" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return HttpResponse(
            "Metrics need `Authorization: Bearer <OUTFITS_METRICS_TOKEN>` (a local install "
            "also answers requests from this machine).\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every request by its route (the URL pattern's name: few values,
    whatever the SKUs in the paths)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name or match.route) if match else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response
