"""The Celery application: configured from Django settings (CELERY_*), tasks found per app."""

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready

from outfits import folder_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
folder_broker.register()

logger = logging.getLogger(__name__)

app = Celery("outfits")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def run_below_web_requests(**_) -> None:
    """Before the pool forks: every process of the worker yields the CPU to web workers."""
    from outfits.cpu_priority import lower_cpu_priority

    lower_cpu_priority()


_warmed: set[int] = set()  # processes that started (solo: both signals come)


@worker_ready.connect
def warm_up_solo_worker(sender=None, **_) -> None:
    """A solo or threads pool runs tasks in the worker itself; prefork's children warm up on
    their own."""
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if "prefork" not in f"{getattr(pool, '__module__', '')}":
        warm_up_model_work()


@worker_process_init.connect  # each child of a prefork pool
def warm_up_model_work(**_) -> None:
    """A worker of the model's queues (refresh, training, fan-out) imports torch and open_clip
    in the background as it starts (about 12 s on a cold 2-core machine), not when the first
    refresh of a new arrival needs them. Other workers (imports) stay without them."""
    from django.conf import settings

    model_queues = {
        settings.OUTFITS_REFRESH_QUEUE,
        settings.OUTFITS_TRAINING_QUEUE,
        settings.OUTFITS_FANOUT_QUEUE,
    }
    if model_queues & set(app.amqp.queues.consume_from or ()) and os.getpid() not in _warmed:
        _warmed.add(os.getpid())
        logger.info("importing the model's libraries ahead of its first task")
        threading.Thread(target=_import_model_libraries, daemon=True).start()


def _import_model_libraries() -> None:
    import embeddings.engine.photo  # noqa: F401  (torch, open_clip and the encoder)
