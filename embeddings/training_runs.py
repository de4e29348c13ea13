"""Training runs as jobs: one at a time (a lock in the database), a heartbeat while they work,
a cancel honoured at the next batch, runs of killed workers failed once their heartbeat is
stale, and the decision to activate the new version (`decide`, the activation gate)."""

import logging
import math
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    transaction,
)
from django.db.models import Q
from django.utils import timezone

from catalog.heartbeat import Heartbeat, close_connection

from .engine.artifacts import ModelDirectoryUnusable, check_model_directory
from .engine.progress import Progress, no_progress
from .engine.scorers import SCORER_CHOICES
from .models import ModelVersion, TrainingRun

if TYPE_CHECKING:
    from .training import TrainedVersion

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
# Stages of at most this many units (the training's epochs) record when each unit ended.
MARKED_UNITS = 200
COMPARED_METRICS = ("fitb", "fitb_cold", "fitb_warm", "auc", "recall_at_10")


class TrainingAlreadyRunning(Exception):
    """Another run holds the training lock."""


class TrainingCancelled(Exception):
    """Staff cancelled the run; it stops at the next batch."""


class TrainingNotQueued(Exception):
    """The run's task could not be published (the broker is unreachable): the run was failed,
    which released the lock."""


class RunNoLongerRunning(Exception):
    """The run was failed meanwhile (as stale): this worker stops working for it."""


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
    scorer = options.get("scorer")
    if scorer is not None and scorer not in SCORER_CHOICES:
        raise ValueError(f"scorer must be one of {', '.join(SCORER_CHOICES)}, not {scorer!r}")
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
    """Record a run and enqueue its task once the row is committed (a worker must see it).
    When the task cannot be published the run is failed at once, releasing the lock, and
    TrainingNotQueued (raised where the transaction commits) says why."""
    run = create_training_run(requested_by, **options)
    transaction.on_commit(lambda: enqueue_training_run(run))
    return run


def enqueue_training_run(run: TrainingRun) -> None:
    from .tasks import retrain

    try:
        # A message no worker took in time is dropped: its run is failed as never started.
        retrain.apply_async((run.pk,), expires=settings.OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS)
    except Exception as error:
        message = (
            f"Training run {run.pk} could not be queued: the task broker did not take it "
            f"({type(error).__name__}: {error}). Nothing was trained and the active version is "
            "unchanged; Retrain again once the broker (CELERY_BROKER_URL) is back."
        )
        # Only a run still queued: in-process (eager) tasks may have run it already.
        if not TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, finished_at=timezone.now(), message=message
        ):
            raise
        logger.error("%s", message)
        raise TrainingNotQueued(message) from error


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
    its machine), and the queued runs no worker started within
    OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS (their message was lost, or no worker serves the
    training queue): that releases the lock. Half-written files of a lost run stay hidden and
    are removed with the next garbage collection."""
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
    queued_timeout = settings.OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS
    # A worker claims a run under SELECT … FOR UPDATE: this UPDATE waits for it, then skips it.
    failed += TrainingRun.objects.filter(
        status=TrainingRun.Status.QUEUED, created_at__lt=now - timedelta(seconds=queued_timeout)
    ).update(
        status=TrainingRun.Status.FAILED,
        finished_at=now,
        message=(
            f"No worker started this run within {queued_timeout:.0f} s "
            "(OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS): its task was lost, or no Celery worker "
            f"serves the {settings.OUTFITS_TRAINING_QUEUE!r} queue. Nothing was trained."
        ),
    )
    if failed:
        logger.warning("marked %d training run(s) of lost workers or lost tasks failed", failed)
    return failed


class RunHeartbeat(Heartbeat):
    """While a run works, its row is stamped every OUTFITS_TRAINING_HEARTBEAT_SECONDS (only
    while it is running) and a cancel request is looked for every second; the training loop
    asks `raise_if_cancelled()` at every batch."""

    def __init__(self, run_id: int) -> None:
        self.beat_every = settings.OUTFITS_TRAINING_HEARTBEAT_SECONDS
        # Rounds of a second at most: a cancel takes effect within about a second.
        super().__init__(f"training run {run_id}", min(1.0, self.beat_every))
        self.run_id = run_id
        self.cancelled = threading.Event()
        self.last_beat = float("-inf")

    def beat(self) -> None:
        if time.monotonic() - self.last_beat >= self.beat_every:
            TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )
            self.last_beat = time.monotonic()
        if TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
            self.cancelled.set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise TrainingCancelled("Cancelled by staff.")


class RunProgress:
    """Progress written to the run's row (its stages and loss curve), at most twice a second
    per stage; every report is also a point where a cancelled run stops."""

    def __init__(
        self, run: TrainingRun, heartbeat: RunHeartbeat, also: Progress = no_progress
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
        if 1 <= done <= total <= MARKED_UNITS:
            # When each unit (an epoch) ended: the next run's estimate follows this shape.
            marks = state.setdefault("marks", [])
            del marks[done - 1 :]
            marks += [round(now - state["started"], 3)] * (done - len(marks))
        if "loss" in info and stage == "training compatibility head" and done >= 1:
            del self.losses[done - 1 :]
            self.losses.append(round(float(info["loss"]), 6))
        new_stage = stage != self.run.stage
        if not new_stage and done < total and now - self.last_write < 0.5:
            return
        self.last_write = now
        details = ", ".join(f"{key} {value:.4f}" for key, value in info.items())
        try:
            # Only a run still running: one failed meanwhile (as stale) keeps its message.
            written = TrainingRun.objects.filter(
                pk=self.run.pk, status=TrainingRun.Status.RUNNING
            ).update(
                stage=stage,
                progress_done=done,
                progress_total=total,
                stages=self.stages,
                loss_curve=self.losses,
                message=f"{stage}: {done}/{total}" + (f" ({details})" if details else ""),
            )
        except (OperationalError, InterfaceError):
            # Progress is for people watching: a lost connection skips one report; the next
            # query (a later report, or the run's own writes) opens a fresh connection.
            logger.warning("progress of training run %s not written", self.run.pk, exc_info=True)
            close_connection()
            return
        if not written:
            raise RunNoLongerRunning(
                f"Training run {self.run.pk} is no longer running (it was failed meanwhile)."
            )
        self.run.stage = stage


def execute_training_run(run_id: int, progress: Progress = no_progress) -> TrainingRun:
    """Carry out a queued run. Safe to call twice: a run that is not queued is left alone.
    Whatever happens (an error, a cancel, a diverging loss), nothing half-made becomes
    visible and the active version stays; the outcome is recorded on the run."""
    from . import training, versions

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
    with RunHeartbeat(run.pk) as heartbeat:
        run_progress = RunProgress(run, heartbeat, also=progress)
        try:
            check_model_directory(  # before the compute, not after it
                Path(settings.OUTFITS_MODEL_DIR),
                settings.OUTFITS_MODEL_DIR_MIN_FREE_MB,
                nothing_done="Nothing was trained",
                again="retrain",
            )
            trained = training.train_model_version(
                training.training_options(
                    epochs=run.options.get("epochs") or None,
                    unfrozen_blocks=run.options.get("unfrozen_blocks"),
                    pretrained=run.options.get("pretrained"),
                    scorer=run.options.get("scorer"),
                ),
                progress=run_progress,
                check_cancelled=heartbeat.raise_if_cancelled,
            )
        except TrainingCancelled:
            outcome = {
                "status": TrainingRun.Status.CANCELLED,
                "message": "Cancelled by staff; nothing of this run was kept. "
                "The active version is unchanged.",
            }
        except RunNoLongerRunning as gone:  # its row already says why
            logger.warning("%s Stopping its work.", gone)
        except ModelDirectoryUnusable as unusable:
            logger.error("training run %s: %s", run_id, unusable)
            outcome = {"status": TrainingRun.Status.FAILED, "message": str(unusable)}
        except Exception as error:
            logger.exception("training run %s failed", run_id)
            outcome = {
                "status": TrainingRun.Status.FAILED,
                "message": f"{type(error).__name__}: {error}",
            }
        # Still inside the heartbeat: a run waiting for its database is not taken for lost.
        kept = record_outcome(run.pk, trained, outcome, run_progress)
    if kept:
        versions.collect_old_versions()
    return TrainingRun.objects.get(pk=run.pk)


OUTCOME_ATTEMPTS = 6  # about half a minute of retries (1 + 2 + 4 + 8 + 16 s)


def record_outcome(
    run_id: int,
    trained: "TrainedVersion | None",
    outcome: dict[str, Any],
    run_progress: RunProgress,
) -> bool:
    """Commit the activation decision and the run's outcome together, unless the run was
    meanwhile failed as stale (then its version stays inactive); True if a version was kept.
    On a fresh connection (the run's own may have died during the compute), retried while the
    database is unreachable: a finished version is not thrown away for one dropped connection."""
    for attempt in range(1, OUTCOME_ATTEMPTS + 1):
        close_connection()
        try:
            with transaction.atomic():
                row = TrainingRun.objects.select_for_update().filter(pk=run_id)
                if not row.filter(status=TrainingRun.Status.RUNNING).exists():
                    return False
                final = dict(outcome)
                if trained is not None:
                    final = decide(trained.version, trained.comparison) | {
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
                    **final,
                )
                return trained is not None
        except (OperationalError, InterfaceError):
            if attempt == OUTCOME_ATTEMPTS:
                raise
            logger.warning(
                "recording the outcome of training run %s failed (attempt %d of %d); retrying",
                run_id,
                attempt,
                OUTCOME_ATTEMPTS,
                exc_info=True,
            )
            time.sleep(2 ** (attempt - 1))
    return False


def activation_rule() -> str:
    """When `decide` activates a new version, in words for the Retrain form (the same setting
    decides both, so they cannot disagree)."""
    margin = settings.OUTFITS_ACTIVATION_MARGIN
    if margin > 0:
        how = f"better than the active version's by at least {margin:.3f}"
    elif margin < 0:
        how = f"no more than {-margin:.3f} below the active version's"
    else:
        how = "at least as good as the active version's (a tie activates the newer one)"
    return (
        f"activated when its held-out FITB is {how}; otherwise kept inactive, and staff can "
        "activate it by hand (OUTFITS_ACTIVATION_MARGIN)"
    )


def decide(version: ModelVersion, comparison: dict[str, Any]) -> dict[str, Any]:
    """Activate `version` when it fills the held-out blanks at least OUTFITS_ACTIVATION_MARGIN
    better than the active version on the same questions (or when nothing is active): see
    `activation_rule`."""
    from .versions import activate

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
    """An estimate from the run's own progress: the current stage at its pace so far, then the
    later stages as long as they took in the last successful run, scaled by how fast this run
    is going against that one. Where the last run marked when each unit of the current stage
    ended (epochs: the tuned ones are slower than the head-only ones) and did as many, the
    stage's remaining share follows that shape instead of a straight line. None until the
    current stage has made progress."""
    if run.finished or run.stage not in run.stages:
        return None
    state = run.stages[run.stage]
    done, total = state.get("done", 0), state.get("total", 0)
    if not done:
        return None
    elapsed = max(state["updated"] - state["started"], 1e-3)
    left = elapsed / done * (total - done)
    previous = (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .values_list("stages", flat=True)
        .first()
    ) or {}
    pace = 1.0  # this run's seconds per second of the last run's, on the same work
    before = previous.get(run.stage, {})
    marks = before.get("marks") or []
    if before.get("total") == total and len(marks) == total and marks[done - 1] > 0:
        pace = elapsed / marks[done - 1]
        left = (marks[-1] - marks[done - 1]) * pace
    later = STAGES[STAGES.index(run.stage) + 1 :] if run.stage in STAGES else ()
    return left + pace * sum(
        previous[stage]["updated"] - previous[stage]["started"]
        for stage in later
        if stage in previous
    )
