"""Probes for load balancers and orchestrators: /healthz (the process answers: no database, no
cache) and /readyz (it can serve: database, cache, broker and the active model, each checked
within CHECK_SECONDS, in parallel)."""

import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

CHECK_SECONDS = 2.0


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    return connections["default"].vendor


def check_cache() -> str:
    cache.set("outfits:readyz", "1", 10)
    if cache.get("outfits:readyz") != "1":
        raise RuntimeError("a value written to the cache could not be read back")
    return settings.CACHES["default"]["BACKEND"].rpartition(".")[2]


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "none: tasks run in the web process"
    from outfits.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_SECONDS)
        return settings.CELERY_BROKER_URL.partition(":")[0]


def check_model() -> str:
    from embeddings.loaded_versions import active_compatibility_index
    from outfits.serving import current_snapshot

    version = current_snapshot().rules.active_version
    if version is None:
        raise RuntimeError("no model version is active: train one")
    if active_compatibility_index(version) is None:
        raise RuntimeError(f"model version {version.name} could not be loaded")
    return version.name


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "model": check_model,
}


def run_check(check: Callable[[], str], result: dict) -> None:
    started = time.perf_counter()
    try:
        result.update(ok=True, detail=check())
    except Exception as error:  # any failure is the answer: not ready, and why
        result.update(ok=False, detail=f"{type(error).__name__}: {error}"[:300])
    finally:
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        connections.close_all()  # this thread's own connections


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, else 503; each check's outcome, detail and time. A check
    still running after CHECK_SECONDS (a frozen server) fails as timed out."""
    results: dict[str, dict] = {name: {} for name in CHECKS}
    threads = [
        threading.Thread(target=run_check, args=(check, results[name]), daemon=True)
        for name, check in CHECKS.items()
    ]
    deadline = time.monotonic() + CHECK_SECONDS
    for thread in threads:
        thread.start()
    checks = {}
    for name, thread in zip(CHECKS, threads, strict=True):
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive() or "ok" not in results[name]:
            checks[name] = {"ok": False, "detail": f"no answer within {CHECK_SECONDS:.0f} s"}
        else:
            checks[name] = dict(results[name])
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
