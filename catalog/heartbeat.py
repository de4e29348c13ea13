"""A long job's heartbeat thread: import jobs (catalog.import_jobs) and training runs
(embeddings.training_runs) stamp their row with it, so a reaper can tell a live job from one
whose worker was killed."""

import logging
import threading

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


def close_connection() -> None:
    """Drop this thread's database connection (Django opens a new one on the next query);
    inside a transaction (a test's) it is left to the transaction."""
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except DatabaseError:
        logger.debug("closing a broken database connection failed", exc_info=True)


class Heartbeat:
    """While its `with` block runs, a thread calls `beat()` at once and then every `every`
    seconds. A database error (a dropped connection, a restart) costs a round, not the thread:
    it is logged once per outage, the connection is dropped so the next round opens a fresh
    one, and the return is logged too; the job goes on meanwhile."""

    def __init__(self, label: str, every: float) -> None:
        self.label, self.every = label, every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat of {label}", daemon=True)

    def beat(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    self.beat()
                    if failures:
                        logger.warning(
                            "heartbeat of %s is back after %d failed round(s)",
                            self.label,
                            failures,
                        )
                        failures = 0
                except Exception:
                    failures += 1
                    if failures == 1:  # once per outage, not every round of it
                        logger.exception("heartbeat of %s missed: it failed; retrying", self.label)
                    close_connection()
                if self.stopped.wait(self.every):
                    return
        finally:
            close_connection()  # this thread's own connection
