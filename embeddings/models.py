"""Model versions (artifact directories on disk) and the training runs that produce them."""

from django.conf import settings
from django.db import models

from catalog.changes import ServedQuerySet


class ModelVersion(models.Model):
    name = models.CharField(max_length=64, unique=True)
    # Directory name under settings.OUTFITS_MODEL_DIR holding the manifest and artifacts.
    directory = models.CharField(max_length=200, unique=True)
    backbone = models.CharField(max_length=300)
    pretrained = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    manifest = models.JSONField(default=dict, blank=True)

    objects = ServedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_model_version",
            )
        ]

    def __str__(self) -> str:
        return self.name


class TrainingRun(models.Model):
    """One retrain, from the click (or command) to the decision. Its row is the job's whole
    state: the worker writes progress and a heartbeat, the admin page polls it, staff request
    a cancel through it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Outcome(models.TextChoices):
        ACTIVATED = "activated", "Activated"
        KEPT_INACTIVE = "kept_inactive", "Kept inactive"

    IN_PROGRESS = (Status.QUEUED, Status.RUNNING)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=64, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Every stage so far: {stage: {done, total, started, updated (epoch seconds), info}}.
    stages = models.JSONField(default=dict, blank=True)
    loss_curve = models.JSONField(default=list, blank=True)  # mean loss of each epoch
    message = models.TextField(blank=True)
    options = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # The new version against the version active when the run ended, on the same questions.
    comparison = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    product_count = models.PositiveIntegerField(default=0)
    outfit_count = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    # Written every few seconds while the run works: a stale one means its worker is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The training lock: at most one run queued or running, whichever process asks.
            models.UniqueConstraint(
                models.Value(1),
                condition=models.Q(status__in=["queued", "running"]),
                name="one_training_at_a_time",
            )
        ]

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status not in self.IN_PROGRESS

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return round(100 * self.progress_done / self.progress_total)

    @property
    def seconds(self) -> float | None:
        """How long it has run (or ran)."""
        if self.started_at is None:
            return None
        from django.utils import timezone

        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()


class VersionRefresh(models.Model):
    """The active version refreshed with catalog changes, without retraining
    (embeddings.version_refresh): the products it embedded, replaced and removed, and the
    directory it wrote, which the version then serves. One runs at a time per version: the
    database refuses a second `running` row."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        DROPPED = "dropped"  # its version stopped being the active one meanwhile

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="refreshes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    directory = models.CharField(max_length=200, blank=True)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    embedded = models.PositiveIntegerField(default=0)  # progress: products embedded so far
    # The catalog change (catalog.changes: [number, stamp]) it took in everything up to.
    catalog_as_of = models.JSONField(null=True, blank=True, editable=False)
    seconds = models.FloatField(null=True, blank=True)
    # Where the seconds went, in order: [[stage, seconds], …] (reading, embedding, lists,
    # writing). Pairs, not an object: PostgreSQL's jsonb does not keep keys in order.
    stages = models.JSONField(default=list, blank=True, editable=False)
    message = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name_plural = "version refreshes"
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(status="running"),
                name="one_running_refresh_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"refresh {self.pk} of {self.version}"
