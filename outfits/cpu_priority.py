"""Background work yields the CPU to web requests: a Celery worker (imports, training, fan-out
chunks) lowers its own scheduling priority when it starts (outfits.celery), so on a machine it
shares with web workers the kernel gives those the cores first, and training takes what is left
(benchmarks/api_beside_training.py measures it); the refresh queue's worker takes only what
nobody wants (OUTFITS_WORKER_IDLE_PRIORITY; benchmarks/freshness.py). A web process's own
thread loading a version beside its requests yields too: to the cores (lower_thread_priority)
and to the interpreter (short_interpreter_turns)."""

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

logger = logging.getLogger(__name__)


def _background_niceness() -> int:
    return min(settings.OUTFITS_BACKGROUND_NICENESS, 19)  # the kernel's lowest priority


def lower_cpu_priority() -> int:
    """Raise this process's niceness to OUTFITS_BACKGROUND_NICENESS (never lower it: that
    takes privileges), and with OUTFITS_WORKER_IDLE_PRIORITY schedule it only on CPU time
    nothing else wants (Linux's SCHED_IDLE: one way too); the niceness it has now. Processes
    it forks and threads it starts afterwards inherit both."""
    current = os.nice(0)
    wanted = _background_niceness()
    if wanted > current:
        current = os.nice(wanted - current)
        logger.info("background work runs at niceness %d, below web requests", current)
    if settings.OUTFITS_WORKER_IDLE_PRIORITY and sys.platform == "linux":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        logger.info("background work runs on the CPU time nothing else wants (SCHED_IDLE)")
    return current


def lower_thread_priority() -> None:
    """Raise the calling thread's niceness (only its own: Linux schedules threads) to
    OUTFITS_BACKGROUND_NICENESS: a web process's thread loading a version beside the served one
    leaves the cores to the requests, of its own process and the other workers'."""
    if sys.platform != "linux":  # elsewhere the call would lower the whole process
        return
    thread = threading.get_native_id()
    wanted = _background_niceness()
    if wanted > os.getpriority(os.PRIO_PROCESS, thread):
        os.setpriority(os.PRIO_PROCESS, thread, wanted)


@contextmanager
def short_interpreter_turns(seconds: float = 0.0005) -> Iterator[None]:
    """While a web process's thread works beside its requests: the interpreter passes between
    threads every `seconds` instead of every 5 ms, so a request waits at most that long each
    time it wants the interpreter back (after each query, each socket read) from a thread busy
    in Python (a 1M version's SKUs parsed and indexed: answers of 25–123 ms at 5 ms turns)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
