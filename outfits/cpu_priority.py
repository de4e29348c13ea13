"""Background work yields the CPU to web requests: a Celery worker (imports, training, fan-out
chunks) lowers its own scheduling priority when it starts (outfits.celery), so on a machine it
shares with web workers the kernel gives those the cores first, and training takes what is left
(benchmarks/api_beside_training.py measures it)."""

import logging
import os
import sys
import threading

from django.conf import settings

logger = logging.getLogger(__name__)


def lower_cpu_priority() -> int:
    """Raise this process's niceness to OUTFITS_BACKGROUND_NICENESS (never lower it: that
    takes privileges); the niceness it has now. Processes it forks inherit it."""
    current = os.nice(0)
    wanted = min(settings.OUTFITS_BACKGROUND_NICENESS, 19)
    if wanted > current:
        current = os.nice(wanted - current)
        logger.info("background work runs at niceness %d, below web requests", current)
    return current


def lower_thread_priority() -> None:
    """Raise the calling thread's niceness (only its own: Linux schedules threads) to
    OUTFITS_BACKGROUND_NICENESS: a web process's thread loading a version beside the served one
    leaves the cores to the requests, of its own process and the other workers'."""
    if sys.platform != "linux":  # elsewhere the call would lower the whole process
        return
    thread = threading.get_native_id()
    wanted = min(settings.OUTFITS_BACKGROUND_NICENESS, 19)
    if wanted > os.getpriority(os.PRIO_PROCESS, thread):
        os.setpriority(os.PRIO_PROCESS, thread, wanted)
