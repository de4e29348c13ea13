"""Products, their categories, and the import jobs that load them from merchandisers' files."""

import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from .changes import EverythingQuerySet, ProductQuerySet


class Category(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=140, unique=True)
    group = models.CharField(max_length=120, blank=True, help_text="e.g. Tops, Bottoms")

    objects = EverythingQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:140] or "category"
        super().save(*args, **kwargs)


class Product(models.Model):
    sku = models.CharField("SKU", max_length=64, unique=True)
    title = models.CharField(max_length=300)
    # The import made the title of colour and category (its file had none): "Grey dresses"
    # names hundreds of garments, so it tells no twins apart (outfits.row_facts.look_key).
    title_made_up = models.BooleanField(default=False, editable=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    colour = models.CharField(max_length=80, blank=True)
    style = models.CharField(
        max_length=64,
        blank=True,
        help_text="The garment's style or parent code: its colourways share it, and a row of "
        "matches shows one of them.",
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    in_stock = models.BooleanField(default=True)
    image = models.ImageField(upload_to="products/", blank=True)
    thumbnail = models.ImageField(upload_to="products/", blank=True, editable=False)
    # Content hash of the stored image: an unchanged image is neither stored nor embedded again.
    image_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    # Where the image came from (a path or URL): an unchanged URL is not fetched again.
    image_source = models.CharField(max_length=2000, blank=True, editable=False)
    attributes = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The last import that listed this product, and where: finds duplicates within a file
    # without holding every SKU in memory, and the products a full upload no longer lists.
    import_job = models.ForeignKey(
        "ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    import_line = models.PositiveIntegerField(null=True, blank=True, editable=False)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["sku"]
        indexes = [
            models.Index(fields=["category", "active"]),
            models.Index(fields=["-created_at", "-id"], name="product_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("shop:product-detail", args=[self.sku])

    @property
    def card_image_url(self) -> str | None:
        """The small picture for lists and panels (the full image if no thumbnail yet)."""
        image = self.thumbnail or self.image
        return image.url if image else None


class PrivateImportStorage(FileSystemStorage):
    """Uploaded import files (CSVs, image zips) in OUTFITS_IMPORT_FILES_DIR: outside MEDIA_ROOT,
    so no URL serves them; the admin streams them to staff who may view import jobs."""

    @property
    def base_location(self) -> str:  # read on each use: the setting may change (tests)
        return str(settings.OUTFITS_IMPORT_FILES_DIR)

    @property
    def location(self) -> str:
        location = Path(self.base_location).resolve()
        media = Path(settings.MEDIA_ROOT).resolve()
        if location == media or media in location.parents:
            raise ImproperlyConfigured(
                f"OUTFITS_IMPORT_FILES_DIR ({location}) lies in MEDIA_ROOT ({media}), which is "
                "served to anyone: give it a folder outside."
            )
        return str(location)

    def url(self, name: str | None) -> str:
        raise ValueError("Import files have no public URL; the admin serves them to staff.")


_import_files_storage = PrivateImportStorage()


def import_files_storage() -> PrivateImportStorage:
    """The storage of ImportJob's files (a callable, so migrations name it, not its folder)."""
    return _import_files_storage


def stored_source_name(job: "ImportJob", filename: str) -> str:
    """A random name: nothing of the uploader's file name reaches the disk (original_name keeps
    it for display)."""
    return f"{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.csv"


def stored_archive_name(job: "ImportJob", filename: str) -> str:
    return f"{timezone.now():%Y/%m}/{secrets.token_urlsafe(18)}.zip"


class ImportJob(models.Model):
    """One upload of a catalog or outfits CSV, and its progress, counts and outcome."""

    class Kind(models.TextChoices):
        CATALOG = "catalog", "Catalog"
        OUTFITS = "outfits", "Outfits"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        # Its worker stopped sending heartbeats (killed, machine lost): it waits to be resumed.
        INTERRUPTED = "interrupted"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CATALOG)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    source = models.FileField(upload_to=stored_source_name, storage=import_files_storage)
    original_name = models.CharField(max_length=300)
    # Deleted when the job ends (kept while it may resume, and by a dry run until applied).
    images_archive = models.FileField(
        upload_to=stored_archive_name, storage=import_files_storage, blank=True
    )
    images_archive_name = models.CharField(max_length=300, blank=True)
    images_folder = models.CharField(
        max_length=1000, blank=True, help_text="A folder on the server, under an allowed root."
    )
    # Set only for command-line imports, whose user can read the server's files anyway:
    # image paths may then lie anywhere, not only under OUTFITS_IMPORT_ROOTS.
    trusted_paths = models.BooleanField(default=False, editable=False)
    column_mapping = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    deactivate_missing = models.BooleanField(
        default=False, help_text="A full upload: deactivate active products the file omits."
    )
    create_categories = models.BooleanField(default=True)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    lines_total = models.PositiveIntegerField(default=0)
    lines_done = models.PositiveIntegerField(default=0)
    # Everything up to this line is committed: a restarted job continues after it.
    resume_after_line = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The run that holds the job: who (host and pid), its random token (checked by every chunk
    # commit, so a run that lost its claim stops instead of writing), and its last sign of life.
    worker = models.CharField(max_length=200, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        return f"{self.get_kind_display()} import {self.pk}: {self.original_name}{mode}"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        return round(100 * self.lines_done / self.lines_total) if self.lines_total else 0

    @property
    def rows_per_second(self) -> float | None:
        if not self.started_at or not self.lines_done:
            return None
        from django.utils import timezone

        elapsed = ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
        return self.lines_done / elapsed if elapsed > 0 else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.rows_per_second
        if self.finished or not rate:
            return None
        return max(0.0, (self.lines_total - self.lines_done) / rate)


class ImportRejection(models.Model):
    """A row an import job refused: where, which column, what value, and why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=300)
    value = models.TextField(blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["job", "line", "pk"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}={self.value!r}: {self.reason}"


class ServingGeneration(models.Model):
    """One row: the number of the latest change to what shoppers may be shown (products,
    categories, merchandising rules, API keys, the active model) and a random stamp of it, so
    a web process that has read number n knows whether its copy is current (see
    catalog.changes). The stamp tells a rolled-back or restored counter from the one read."""

    number = models.PositiveBigIntegerField(default=0)
    stamp = models.CharField(max_length=16, default="")

    def __str__(self) -> str:
        return f"change {self.number}"


class ServingChange(models.Model):
    """What change `number` touched: the ids of the products, or null for "reload all"."""

    number = models.PositiveBigIntegerField(primary_key=True)
    stamp = models.CharField(max_length=16)
    product_ids = models.JSONField(null=True)

    def __str__(self) -> str:
        return f"change {self.number}"


@receiver(post_delete, sender=ImportJob)
def delete_files_of_deleted_job(sender, instance: ImportJob, **kwargs) -> None:
    """A deleted job's stored files go too, once the deletion commits, unless another job still
    names them (a dry run and the import that applied it share its CSV)."""
    names = {stored.name for stored in (instance.source, instance.images_archive) if stored}

    def delete_unshared() -> None:
        for name in names:
            if not ImportJob.objects.filter(Q(source=name) | Q(images_archive=name)).exists():
                import_files_storage().delete(name)

    transaction.on_commit(delete_unshared)
