"""Training runs as jobs: one at a time (a lock in the database), a heartbeat while they work,
a cancel honoured at the next batch, runs of killed workers failed once their heartbeat is
stale, and the decision to activate the new version only when it is better."""

import logging
import math
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import ModelVersion, TrainingRun
from .progress import Progress, no_progress

logger = logging.getLogger(__name__)

# The stages of a run, in order, as the engine names them in its progress reports.
STAGES = (
    "preparing",  # reading products and outfits, loading the backbone
    "embedding images",
    "embedding titles",
    "training compatibility head",
    "evaluating",
    "indexing",
)
COMPARED_METRICS = ("fitb", "fitb_cold", "fitb_warm", "auc", "recall_at_10")


class TrainingAlreadyRunning(Exception):
    """Another run holds the training lock."""


class TrainingCancelled(Exception):
    """Staff cancelled the run; it stops at the next batch."""


def backbone_checkpoints() -> list[str]:
    """Checkpoints a retrain may start from: the configured one, then any other weights file
    in var/backbones/ (the same architecture, OUTFITS_BACKBONE)."""
    found = [settings.OUTFITS_PRETRAINED]
    folder = Path(settings.VAR_DIR) / "backbones"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in {".safetensors", ".pt", ".bin"} and str(path) not in found:
                found.append(str(path))
    return found


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The run's options, validated: epochs ≥ 1, unfrozen_blocks ≥ 0, a known checkpoint."""
    epochs, blocks = options.get("epochs"), options.get("unfrozen_blocks")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a whole number of at least 1, not {epochs!r}")
    if blocks is not None and (not isinstance(blocks, int) or blocks < 0):
        raise ValueError(f"unfrozen_blocks must be a whole number of 0 or more, not {blocks!r}")
    pretrained = options.get("pretrained")
    if pretrained and pretrained not in backbone_checkpoints():
        raise ValueError(
            f"Unknown backbone checkpoint {pretrained}: use OUTFITS_PRETRAINED or a file "
            f"in {Path(settings.VAR_DIR) / 'backbones'}"
        )
    return {key: value for key, value in options.items() if value is not None}


def create_training_run(requested_by=None, **options: Any) -> TrainingRun:
    """Take the training lock by recording a queued run. Raises TrainingAlreadyRunning while
    another run is queued or running (the database's unique constraint decides, so two web
    processes clicking at once cannot both win), ValueError on bad options."""
    options = check_options(options)
    fail_stale_training_runs()
    staff = requested_by if requested_by and requested_by.is_authenticated else None
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(requested_by=staff, options=options)
    except IntegrityError:
        holder = TrainingRun.objects.filter(status__in=TrainingRun.IN_PROGRESS).first()
        raise TrainingAlreadyRunning(lock_holder_message(holder)) from None


def lock_holder_message(holder: TrainingRun | None) -> str:
    if holder is None:  # it finished between our insert and this query
        return "Another training was running a moment ago; try again."
    who = f" by {holder.requested_by}" if holder.requested_by else ""
    return (
        f"Training run {holder.pk} is already {holder.status} (started{who} at "
        f"{holder.created_at:%H:%M:%S}). Only one training runs at a time: wait for it to "
        "finish or cancel it."
    )


def start_training_run(requested_by=None, **options: Any) -> TrainingRun:
    """Record a run and enqueue its task once the row is committed (a worker must see it)."""
    from .tasks import retrain

    run = create_training_run(requested_by, **options)
    transaction.on_commit(lambda: retrain.delay(run.pk))
    return run


def request_cancel(run: TrainingRun) -> str:
    """Cancel a queued run at once; ask a running one to stop at its next batch."""
    if TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message="Cancelled before it started.",
    ):
        return f"Training run {run.pk} was cancelled before it started."
    if TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        cancel_requested=True
    ):
        return f"Training run {run.pk} stops at its next batch."
    raise ValueError(f"Training run {run.pk} has already finished.")


def fail_stale_training_runs() -> int:
    """Mark failed the running runs whose worker stopped sending heartbeats (killed, or lost
    its machine): that releases the lock. Their half-written files stay hidden and are
    removed with the next garbage collection."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.OUTFITS_TRAINING_STALE_SECONDS)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = 0
    for run in stale:
        failed += TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED,
            finished_at=now,
            message=(
                f"The worker ({run.worker or 'unknown'}) stopped sending heartbeats "
                f"{(now - (run.heartbeat_at or run.started_at)).total_seconds():.0f} s ago: it "
                "was killed or lost. Nothing of this run was activated."
            ),
        )
    if failed:
        logger.warning("marked %d training run(s) of lost workers failed", failed)
    return failed


class Heartbeat:
    """While a run works, a thread stamps its row every few seconds and looks for a cancel
    request every second; the training loop asks `raise_if_cancelled()` at every batch."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.cancelled = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        beat_every = settings.OUTFITS_TRAINING_HEARTBEAT_SECONDS
        last_beat = float("-inf")
        try:
            while True:
                if time.monotonic() - last_beat >= beat_every:
                    TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
                    last_beat = time.monotonic()
                # Looked at every second: a cancel takes effect within about a second.
                if TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
                    self.cancelled.set()
                if self.stopped.wait(min(1.0, beat_every)):
                    return
        except Exception:  # the run goes on; without heartbeats it is failed as stale
            logger.exception("heartbeat of training run %s stopped", self.run_id)
        finally:
            connection.close()  # this thread's own connection

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise TrainingCancelled("Cancelled by staff.")


class RunProgress:
    """Progress written to the run's row (its stages and loss curve), at most twice a second
    per stage; every report is also a point where a cancelled run stops."""

    def __init__(
        self, run: TrainingRun, heartbeat: Heartbeat, also: Progress = no_progress
    ) -> None:
        self.run = run
        self.heartbeat = heartbeat
        self.also = also
        self.last_write = 0.0
        self.stages: dict[str, dict[str, Any]] = {}
        self.losses: list[float] = []

    def __call__(self, stage: str, done: int, total: int, **info: float) -> None:
        self.heartbeat.raise_if_cancelled()
        self.also(stage, done, total, **info)
        now = time.time()
        state = self.stages.setdefault(stage, {"started": now})
        state |= {"done": done, "total": total, "updated": now, "info": info}
        if "loss" in info and stage == "training compatibility head" and done >= 1:
            del self.losses[done - 1 :]
            self.losses.append(round(float(info["loss"]), 6))
        new_stage = stage != self.run.stage
        if not new_stage and done < total and now - self.last_write < 0.5:
            return
        self.last_write = now
        details = ", ".join(f"{key} {value:.4f}" for key, value in info.items())
        TrainingRun.objects.filter(pk=self.run.pk).update(
            stage=stage,
            progress_done=done,
            progress_total=total,
            stages=self.stages,
            loss_curve=self.losses,
            message=f"{stage}: {done}/{total}" + (f" ({details})" if details else ""),
        )
        self.run.stage = stage


def execute_training_run(run_id: int, progress: Progress = no_progress) -> TrainingRun:
    """Carry out a queued run. Safe to call twice: a run that is not queued is left alone.
    Whatever happens (an error, a cancel, a diverging loss), nothing half-made becomes
    visible and the active version stays; the outcome is recorded on the run."""
    from . import services

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status != TrainingRun.Status.QUEUED:
            logger.info("training run %s is %s; not starting it again", run_id, run.status)
            return run
        run.status, run.started_at = TrainingRun.Status.RUNNING, timezone.now()
        run.heartbeat_at, run.worker = run.started_at, f"{socket.gethostname()} pid {os.getpid()}"
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
    trained = None
    outcome: dict[str, Any] = {}
    with Heartbeat(run.pk) as heartbeat:
        run_progress = RunProgress(run, heartbeat, also=progress)
        try:
            blocks = run.options.get("unfrozen_blocks")
            trained = services.train_model_version(
                epochs=run.options.get("epochs") or settings.OUTFITS_TRAINING_EPOCHS,
                unfrozen_blocks=settings.OUTFITS_UNFROZEN_BLOCKS if blocks is None else blocks,
                pretrained=run.options.get("pretrained") or settings.OUTFITS_PRETRAINED,
                progress=run_progress,
                check_cancelled=heartbeat.raise_if_cancelled,
            )
        except TrainingCancelled:
            outcome = {
                "status": TrainingRun.Status.CANCELLED,
                "message": "Cancelled by staff; nothing of this run was kept. "
                "The active version is unchanged.",
            }
        except Exception as error:
            logger.exception("training run %s failed", run_id)
            outcome = {
                "status": TrainingRun.Status.FAILED,
                "message": f"{type(error).__name__}: {error}",
            }
        # The decision and the run's outcome commit together, unless the run was meanwhile
        # failed as stale (then its version stays inactive).
        with transaction.atomic():
            row = TrainingRun.objects.select_for_update().filter(pk=run.pk)
            if row.filter(status=TrainingRun.Status.RUNNING).exists():
                if trained is not None:
                    outcome = decide(trained.version, trained.comparison) | {
                        "status": TrainingRun.Status.SUCCEEDED,
                        "model_version": trained.version,
                        "metrics": trained.version.metrics,
                        "comparison": trained.comparison,
                        "product_count": trained.version.manifest.get("item_count", 0),
                        "outfit_count": trained.version.manifest.get("outfit_count", 0),
                    }
                row.update(
                    stages=run_progress.stages,
                    loss_curve=run_progress.losses,
                    finished_at=timezone.now(),
                    **outcome,
                )
            else:
                trained = None
    if trained is not None:
        services.collect_old_versions()
    return TrainingRun.objects.get(pk=run.pk)


def decide(version: ModelVersion, comparison: dict[str, Any]) -> dict[str, Any]:
    """Activate `version` when it fills the held-out blanks at least OUTFITS_ACTIVATION_MARGIN
    better than the active version on the same questions (or when nothing is active)."""
    from .services import activate

    margin = settings.OUTFITS_ACTIVATION_MARGIN
    new, active = (comparison.get(side, {}).get("fitb") for side in ("new", "active"))
    if not comparison:
        reason = "no version was active"
    elif active is None or new is None or math.isnan(active) or math.isnan(new):
        reason = "the active version could not answer the held-out questions"
    elif new - active >= margin:
        reason = f"FITB {new:.3f} against {active:.3f} of {comparison['active_version']}"
    else:
        return {
            "outcome": TrainingRun.Outcome.KEPT_INACTIVE,
            "message": (
                f"Model version {version.name} was kept inactive: FITB {new:.3f} is not better "
                f"than {active:.3f} of the active {comparison['active_version']} by the margin "
                f"{margin:+.3f} (OUTFITS_ACTIVATION_MARGIN). It can be activated by hand."
            ),
        }
    activate(version)
    return {
        "outcome": TrainingRun.Outcome.ACTIVATED,
        "message": f"Model version {version.name} trained and activated: {reason}.",
    }


def seconds_left(run: TrainingRun) -> float | None:
    """An estimate: the current stage at its pace so far (or, if the last successful run did
    the same work in it and took longer, what it has left of that), plus the later stages as
    long as they took in that run. None until the current stage has made progress."""
    if run.finished or run.stage not in run.stages:
        return None
    state = run.stages[run.stage]
    if not state["done"]:
        return None
    elapsed = state["updated"] - state["started"]
    left = elapsed / state["done"] * (state["total"] - state["done"])
    previous = (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .values_list("stages", flat=True)
        .first()
    ) or {}

    def took(stage: str) -> float:
        return previous[stage]["updated"] - previous[stage]["started"]

    # Epochs are not all alike (the tuned ones are slower): the last run knows better.
    if previous.get(run.stage, {}).get("total") == state["total"]:
        left = max(left, took(run.stage) - elapsed)
    later = STAGES[STAGES.index(run.stage) + 1 :] if run.stage in STAGES else ()
    return left + sum(took(stage) for stage in later if stage in previous)
