"""gunicorn's settings for the site, read from the working directory (Docker's web service,
`gunicorn outfits.wsgi`): each worker warmed up before it takes traffic, and the workers'
metrics shared through files, so a scrape of /metrics sees the whole server whichever worker
answers (prometheus_client's multiprocess mode)."""

import os
import shutil
import tempfile


def on_starting(server) -> None:
    # Set before the workers fork and import prometheus_client; a directory of this server's
    # own (not the shared volume: two web containers must not mix their files).
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="outfits-metrics-")


def post_worker_init(worker) -> None:
    from outfits.warm_up import warm_up

    warm_up()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # a replaced worker's live gauges go


def on_exit(server) -> None:
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)
