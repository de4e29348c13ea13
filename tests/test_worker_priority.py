"""A Celery worker yields the CPU to web requests: all of its processes run at the background
niceness (OUTFITS_BACKGROUND_NICENESS), a real worker process with a pool of one child."""

import os
from pathlib import Path

import pytest

from tests.support import wait_for

pytestmark = pytest.mark.services


def niceness(pid: int) -> int:
    # /proc/<pid>/stat: the fields after the command's closing parenthesis; niceness is 19th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


@pytest.mark.django_db(transaction=True)
def test_every_process_of_a_worker_runs_below_web_requests(start_worker, worker_log, settings):
    worker = start_worker(pool="prefork")
    wait_for(lambda: "ready." in worker_log(), "the worker to start", timeout=120)
    expected = max(settings.OUTFITS_BACKGROUND_NICENESS, os.nice(0))
    assert settings.OUTFITS_BACKGROUND_NICENESS > 0
    pool = children(worker.pid)
    assert pool, "the prefork pool has no process"
    assert [niceness(pid) for pid in [worker.pid, *pool]] == [expected] * (1 + len(pool))
