"""A web worker loads what its first request would need before it takes any: the serving
snapshot (products, rules, keys) and the active model's index. gunicorn calls `warm_up` from
post_worker_init (gunicorn.conf.py), so a new or replacement worker answers its first request
as fast as its hundredth while the others serve meanwhile."""

import logging
import time

from django.db import connections

from outfits import database

log = logging.getLogger(__name__)


def warm_up() -> None:
    from outfits.recommendations import active_model
    from outfits.serving import current_snapshot, keep_snapshots_out_of_the_collector

    started = time.perf_counter()
    try:
        snapshot = current_snapshot()
        active = active_model(snapshot)
    except (database.DatabaseUnavailable, *database.DATABASE_ERRORS) as error:
        # The worker still starts: it serves what it can and loads the rest when it can.
        log.warning("warm-up skipped, the database is unavailable: %s", error)
        return
    finally:
        connections.close_all()  # opened before the request loop: not carried into it
        keep_snapshots_out_of_the_collector()  # and every full snapshot this worker builds
    log.info(
        "warmed up in %.1f s: %d products, model version %s",
        time.perf_counter() - started,
        len(snapshot.products),
        active[0].name if active else "none",
    )
