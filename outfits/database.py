"""When PostgreSQL is down or frozen: web requests answer what the serving snapshot can, the
rest get a 503 soon, and the site heals by itself once the database is back.

- `mark_unavailable()` (a failed query anywhere in a request) makes the serving snapshot stop
  asking the database: one thread per process probes it every RETRY_SECONDS and, once it
  answers, requests read the change counter again.
- `DatabaseUnavailableMiddleware` (and handler500 for a failure outside a view) turns a lost
  database into a 503: the API's JSON error `database_unavailable` under /api/, a plain page
  elsewhere, both with Retry-After.
- `serve_web_requests()` (the WSGI entry point calls it) gives web processes' connections a
  statement timeout (OUTFITS_DB_STATEMENT_TIMEOUT_MS) and a client-side deadline a little
  after it: a frozen server (SIGSTOP, a hung host) enforces no timeout of its own, and a
  query on an open connection would otherwise wait for ever."""

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

# What a lost, refused, frozen or overloaded database raises (a statement timeout too: the
# cancelled query is an OperationalError); a bug's ProgrammingError stays a 500.
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_SECONDS = 1.0
# A query the server should have cancelled by its statement timeout, still unanswered this
# much later: the server is frozen or cut off, and the socket is shut so the query fails.
DEADLINE_GRACE_SECONDS = 2.0


class DatabaseUnavailable(Exception):
    """The database cannot be reached and nothing in memory can answer instead."""


def is_database_error(error: BaseException | None) -> bool:
    return isinstance(error, DATABASE_ERRORS + (DatabaseUnavailable,))


# --- Down or up, as this process last saw it ---

_down = threading.Event()
_state_lock = threading.Lock()  # _down is set and cleared under it: one probe at a time


def unavailable() -> bool:
    """True from a failed query until the probe reaches the database again."""
    return _down.is_set()


def mark_unavailable(error: BaseException) -> None:
    """Note that the database failed: the snapshot serves what it has, and one thread retries
    every RETRY_SECONDS (no request waits for a timeout meanwhile)."""
    with _state_lock:
        if _down.is_set():
            return  # its probe is running
        _down.set()
    logger.warning("database unavailable (%s): serving from memory, retrying", error)
    threading.Thread(target=_probe, name="database-probe", daemon=True).start()


def _probe() -> None:
    while True:
        time.sleep(RETRY_SECONDS)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as error:  # whatever it is, the database is not back yet
            logger.debug("database still unavailable: %s", error)
            continue
        finally:
            with contextlib.suppress(Exception):
                connection.close()  # the probe's own connection, in this thread
        with _state_lock:
            _down.clear()
        logger.warning("database available again")
        return


# --- 503 answers ---


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """A 503 for a request that needs the database while it is unavailable."""
    retry_after = str(max(1, round(RETRY_SECONDS)))
    if request.path_info.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "error": {
                    "code": "database_unavailable",
                    "message": "The database is unavailable, so this cannot be answered now; "
                    "matches keep being served. Try again in a moment.",
                }
            },
            status=503,
        )
    else:
        response = HttpResponse(
            "<!doctype html><title>Back in a moment</title><h1>Back in a moment</h1>"
            "<p>The shop cannot answer this right now. Please try again in a moment.</p>",
            status=503,
        )
    response["Retry-After"] = retry_after
    return response


class DatabaseUnavailableMiddleware:
    """A view that fails on the database answers 503 (not 500, not a traceback per request)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, error: Exception) -> HttpResponse | None:
        if not is_database_error(error):
            return None
        if isinstance(error, DATABASE_ERRORS):
            mark_unavailable(error)
        logger.warning("%s %s: 503, database unavailable: %s", request.method, request.path, error)
        return unavailable_response(request)


# --- Timeouts of web processes' queries ---


class QueryDeadlines:
    """A client-side deadline on every query of the connections it wraps: one watcher thread
    shuts the socket of a query past its deadline (the query then fails at once, and Django
    discards the connection at the end of the request). Arming costs a dict write."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed: dict[int, tuple[float, int]] = {}  # thread id → (deadline, socket fd)
        self.lock = threading.Lock()
        self.watcher: threading.Thread | None = None

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict):
        fd = context["connection"].connection.fileno()
        key = threading.get_ident()
        with self.lock:
            self.armed[key] = (time.monotonic() + self.seconds, fd)
            if self.watcher is None:
                self.watcher = threading.Thread(target=self.watch, name="query-deadlines")
                self.watcher.daemon = True
                self.watcher.start()
        try:
            return execute(sql, params, many, context)
        finally:
            with self.lock:
                self.armed.pop(key, None)

    def watch(self) -> None:
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with self.lock:  # a query disarms under the lock: its fd is still its socket here
                for key, (deadline, fd) in list(self.armed.items()):
                    if deadline < now:
                        del self.armed[key]
                        logger.warning("a query got no answer in %.0f s: cut", self.seconds)
                        with (
                            contextlib.suppress(OSError),
                            socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as sock,
                        ):
                            sock.shutdown(socket.SHUT_RDWR)


def serve_web_requests() -> None:
    """Give this process's PostgreSQL connections the web statement timeout, and a deadline
    DEADLINE_GRACE_SECONDS after it. Only web processes call it: imports, training and
    migrations (commands, Celery workers) run statements far longer than a request may."""
    timeout_ms = settings.OUTFITS_DB_STATEMENT_TIMEOUT_MS
    database = connections.settings["default"]
    if timeout_ms <= 0 or not database["ENGINE"].endswith("postgresql"):
        return
    options = database.setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c statement_timeout={timeout_ms}".strip()
    deadlines = QueryDeadlines(timeout_ms / 1000 + DEADLINE_GRACE_SECONDS)

    def wrap(sender: Any, connection: Any, **_) -> None:
        if deadlines not in connection.execute_wrappers:
            connection.execute_wrappers.append(deadlines)

    connection_created.connect(wrap, weak=False, dispatch_uid="web-query-deadlines")
