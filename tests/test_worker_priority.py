"""A Celery worker yields the CPU to web requests: all of its processes run at the background
niceness (OUTFITS_BACKGROUND_NICENESS), a real worker process with a pool of one child."""

import os
import sys
from pathlib import Path

import pytest

from tests.support import wait_for

pytestmark = pytest.mark.services


def niceness(pid: int) -> int:
    # /proc/<pid>/stat: the fields after the command's closing parenthesis; niceness is 19th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


def scheduling_policy(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[38])  # the 41st field


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
    assert {scheduling_policy(pid) for pid in [worker.pid, *pool]} == {os.SCHED_OTHER}


@pytest.mark.django_db(transaction=True)
def test_a_worker_told_so_takes_only_the_cpu_time_nothing_else_wants(
    start_worker, worker_log, site_env
):
    """The refresh queue's own worker (OUTFITS_WORKER_IDLE_PRIORITY): SCHED_IDLE, every
    process of it."""
    site_env["OUTFITS_WORKER_IDLE_PRIORITY"] = "true"
    worker = start_worker(pool="prefork")
    wait_for(lambda: "ready." in worker_log(), "the worker to start", timeout=120)
    pool = children(worker.pid)
    assert pool, "the prefork pool has no process"
    assert [scheduling_policy(pid) for pid in [worker.pid, *pool]] == [os.SCHED_IDLE] * (
        1 + len(pool)
    )


def test_a_thread_lowers_only_its_own_priority(settings):
    import threading

    from outfits.cpu_priority import lower_thread_priority

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def background() -> None:
        lower_thread_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == [max(settings.OUTFITS_BACKGROUND_NICENESS, own)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


def test_a_web_process_loads_a_large_version_beside_below_its_requests(settings):
    """A refreshed or activated version of more than OUTFITS_MODEL_INLINE_ITEMS is verified
    and mapped by a thread while the requests go on: that thread yields the cores to them."""
    import threading

    from embeddings.loaded_versions import LoadedVersion
    from embeddings.models import ModelVersion

    loaded_at: list[int] = []

    turns: list[float] = []

    def load(directory: Path, served: str | None) -> str:
        loaded_at.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        turns.append(sys.getswitchinterval())
        return "the refreshed index"

    loaded = LoadedVersion[str]("serving", load, beside=lambda _: True)
    served = ModelVersion(pk=1, name="v", directory="v")
    loaded.current = (served, "the served index")
    refreshed = ModelVersion(pk=1, name="v", directory="v.r2")
    answer = loaded.get(refreshed)
    assert answer == (served, "the served index")  # the request goes on with the served one
    wait_for(lambda: loaded.current[1] == "the refreshed index", "the load beside", 30)
    wait_for(lambda: not loaded.lock.locked(), "the loading thread to end", 30)
    assert loaded_at == [max(settings.OUTFITS_BACKGROUND_NICENESS, os.nice(0))]
    assert os.nice(0) < settings.OUTFITS_BACKGROUND_NICENESS  # the process itself is not
    # Requests wait for the interpreter in short turns while it loads, as before after.
    assert turns == [0.0005] and sys.getswitchinterval() == 0.005
