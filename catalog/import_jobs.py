"""Running import jobs. The file is streamed in chunks; each chunk is validated, then applied
together with its rejected rows and the job's checkpoint in one transaction. A job killed
mid-way has applied whole chunks only, and a restart continues after the last one."""

import csv
import io
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from .csv_import import (
    REPLACEMENT,
    CsvFormatError,
    ImportReport,
    detect_layout,
    iter_rows,
    resolve_columns,
    spreadsheet_safe,
)
from .heartbeat import Heartbeat
from .image_sources import ArchiveRejected, ImageSources, UrlFetcher, extract_archive
from .models import Category, ImportJob, ImportRejection, Product, import_files_storage
from .signals import catalog_changed

logger = logging.getLogger(__name__)

Row = tuple[int, dict[str, str]]  # (line, {column: value})


class RowImporter(Protocol):
    """Built as `Importer(job, columns, image_sources)` for each run of a job."""

    known_fields: tuple[str, ...]
    required_fields: tuple[str, ...]
    # False: rows are only collected until finish(), so a restart must begin at line 1.
    resumable: bool

    def apply(self, rows: list[Row], report: ImportReport) -> None:
        """Validate and write (in a dry run: only count) rows, inside the caller's transaction."""

    def finish(self, report: ImportReport) -> None:
        """Work after the last row (e.g. deactivating products a full upload omits)."""


# The row importer of each job kind, registered by its app (catalog/apps.py, outfits/apps.py):
# the job runner knows the protocol, not the importers, so no import runs back up to outfits.
_importers: dict[str, type[RowImporter]] = {}


def register_importer(kind: str, importer: type[RowImporter]) -> None:
    _importers[kind] = importer


def importer_class(kind: str) -> type[RowImporter]:
    try:
        return _importers[kind]
    except KeyError:
        raise ImportNotRun(
            f"No row importer is registered for {kind!r} imports (registered: "
            f"{', '.join(sorted(_importers)) or 'none'}): is its app installed?"
        ) from None


def may_start_imports(user) -> bool:
    """The admin's upload page, its "Apply" button and POST /api/v1/imports/ all ask this."""
    return bool(
        user and user.is_active and user.is_staff and user.has_perm("catalog.add_importjob")
    )


def may_see_import_jobs(user) -> bool:
    """Reports, rejections and stored files of import jobs: view (or change) permission, as
    the admin's own pages require."""
    return bool(
        user
        and user.is_active
        and user.is_staff
        and (user.has_perm("catalog.view_importjob") or user.has_perm("catalog.change_importjob"))
    )


def check_images_folder(folder: str) -> Path | None:
    """A server-side images folder must exist under one of OUTFITS_IMPORT_ROOTS."""
    if not folder:
        return None
    path = Path(folder).resolve()
    roots = [Path(root).resolve() for root in settings.OUTFITS_IMPORT_ROOTS]
    if not any(path == root or root in path.parents for root in roots):
        raise ValueError(
            f"Images folder {folder} is not under an allowed import root "
            f"(OUTFITS_IMPORT_ROOTS: {', '.join(map(str, roots))})"
        )
    if not path.is_dir():
        raise ValueError(f"Images folder {folder} does not exist")
    return path


def create_import_job(
    kind: str,
    source: File,
    original_name: str,
    *,
    column_mapping: dict[str, str] | None = None,
    images_archive: File | None = None,
    images_folder: str = "",
    dry_run: bool = False,
    deactivate_missing: bool = False,
    create_categories: bool = True,
    requested_by=None,
    trusted_paths: bool = False,
) -> ImportJob:
    """Store the upload and record the job (not yet run). Raises ValueError on bad options."""
    if kind not in ImportJob.Kind.values:
        raise ValueError(f"Unknown import kind {kind!r}: use {' or '.join(ImportJob.Kind.values)}")
    if trusted_paths:
        if images_folder and not Path(images_folder).is_dir():
            raise ValueError(f"Images folder {images_folder} does not exist")
    else:
        check_images_folder(images_folder)
    known = importer_class(kind).known_fields
    unknown = sorted(set(column_mapping or {}) - set(known))
    if unknown:
        raise ValueError(
            f"Column mapping names unknown field(s) {', '.join(unknown)}; "
            f"the fields are {', '.join(known)}"
        )
    job = ImportJob(
        kind=kind,
        original_name=original_name[:300],
        column_mapping=column_mapping or {},
        images_folder=images_folder,
        dry_run=dry_run,
        deactivate_missing=deactivate_missing,
        create_categories=create_categories,
        trusted_paths=trusted_paths,
        requested_by=requested_by if requested_by and requested_by.is_authenticated else None,
    )
    try:
        # Stored privately under random names (see ImportJob.source); the names given are unused.
        job.source.save("upload.csv", source, save=False)
        if images_archive is not None:
            job.images_archive_name = Path(images_archive.name or "images.zip").name[:300]
            job.images_archive.save("images.zip", images_archive, save=False)
        job.save()
    except BaseException:
        _delete_stored(name for name in (job.source.name, job.images_archive.name) if name)
        raise
    return job


def rerun_for_real(dry_run: ImportJob, requested_by=None) -> ImportJob:
    """A dry run the merchandiser liked, applied: the same stored files and options."""
    if not dry_run.dry_run or dry_run.status != ImportJob.Status.SUCCEEDED:
        raise ValueError("Only a finished dry run can be applied.")
    if dry_run.images_archive_name and not dry_run.images_archive:
        raise ValueError(
            f"The images zip of dry run {dry_run.pk} is no longer stored: it went to the import "
            "that applied it, and was deleted when that one ended. Upload the files again."
        )
    job = ImportJob.objects.create(
        kind=dry_run.kind,
        source=dry_run.source.name,
        original_name=dry_run.original_name,
        images_archive=dry_run.images_archive.name,
        images_archive_name=dry_run.images_archive_name,
        images_folder=dry_run.images_folder,
        trusted_paths=dry_run.trusted_paths,
        column_mapping=dry_run.column_mapping,
        deactivate_missing=dry_run.deactivate_missing,
        create_categories=dry_run.create_categories,
        requested_by=requested_by if requested_by and requested_by.is_authenticated else None,
    )
    if dry_run.images_archive:
        # The zip passes to the applying job, which deletes it when it ends.
        ImportJob.objects.filter(pk=dry_run.pk).update(images_archive="")
        dry_run.images_archive = ""
    return job


def rejections_csv(job: ImportJob) -> Iterator[str]:
    """The report of rejected rows as CSV text, streamed (a bad file may reject millions).
    Cells are spreadsheet-safe: rejected values are exactly the untrusted ones."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "column", "value", "reason"])
    for page in rejection_pages(job):
        for line, column, value, reason in page:
            writer.writerow([line, *map(spreadsheet_safe, (column, value, reason))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def rejection_pages(job: ImportJob, size: int = 2000) -> Iterator[list[tuple]]:
    """(line, column, value, reason) of a job's rejections by line, in pages of one query each
    (keyset: no server-side cursor, whose fetches a web process's query deadline misses)."""
    rows = job.rejections.order_by("line", "pk")
    after = Q()
    while page := list(
        rows.filter(after).values_list("line", "pk", "column", "value", "reason")[:size]
    ):
        yield [(line, column, value, reason) for line, _, column, value, reason in page]
        line, pk = page[-1][:2]
        after = Q(line__gt=line) | Q(line=line, pk__gt=pk)


def enqueue_import_job(job: ImportJob) -> None:
    """Run the job on a worker once the row is committed (in-process in the embedded default)."""
    from .tasks import run_import

    transaction.on_commit(lambda: run_import.delay(job.pk))


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ImportNotRun(Exception):
    """run_import_job() did not (or no longer) run the job; the message says why."""


class ImportJobBusy(ImportNotRun):
    """Another run holds the job and its heartbeat is fresh: a second run would write twice."""


class ImportClaimLost(ImportNotRun):
    """The run's claim was taken (its heartbeat went stale and the job was marked interrupted
    or claimed by another run): it stops before writing anything more."""


def _claim(job_id: int) -> tuple[ImportJob, str] | None:
    """Take the job for this run, atomically: only a job no run holds, or whose run stopped
    sending heartbeats, is taken (one UPDATE, so two runs cannot both win). Returns the job and
    this run's claim token; None for a finished job; raises ImportJobBusy for a live one."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.OUTFITS_IMPORT_STALE_SECONDS)
    # Read first: a job found finished or busy is refused without waiting for a write lock
    # (SQLite: the running job's chunk holds the database's).
    previous = ImportJob.objects.get(pk=job_id)
    token = secrets.token_hex(16)
    claimed = 0
    if not previous.finished and not _held(previous, cutoff):
        claimed = (
            ImportJob.objects.filter(pk=job_id)
            .exclude(status__in=[ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED])
            .filter(Q(claim_token="") | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
            .update(
                status=ImportJob.Status.RUNNING,
                claim_token=token,
                worker=f"{socket.gethostname()} pid {os.getpid()}"[:200],
                heartbeat_at=now,
                started_at=Coalesce(F("started_at"), now),
            )
        )
    job = ImportJob.objects.get(pk=job_id) if claimed or not previous.finished else previous
    if not claimed:
        if job.finished:
            logger.info("import job %s is %s; not running it again", job_id, job.status)
            return None
        raise ImportJobBusy(
            f"Import job {job_id} is being run by {job.worker or 'another run'} (its last "
            f"heartbeat {(now - job.heartbeat_at).total_seconds():.0f} s ago): not starting a "
            "second run, which would apply its rows twice. A job whose worker is gone is marked "
            f"interrupted {settings.OUTFITS_IMPORT_STALE_SECONDS:.0f} s after its last heartbeat "
            "(OUTFITS_IMPORT_STALE_SECONDS) and may be resumed then."
        )
    if previous.status != ImportJob.Status.QUEUED:
        logger.warning(
            "import job %s was %s; resuming after line %s",
            job_id,
            previous.status,
            previous.resume_after_line,
        )
    return job, token


def _held(job: ImportJob, cutoff: datetime) -> bool:
    """Another run holds the job and has shown signs of life since `cutoff`."""
    return bool(job.claim_token and job.heartbeat_at and job.heartbeat_at >= cutoff)


def _hold_claim(job: ImportJob, token: str) -> None:
    """Inside a transaction, before writing: the job is still this run's. The UPDATE locks the
    job's row until the commit (SQLite: the database), so a claim cannot change mid-chunk; it
    also counts as a heartbeat."""
    if not ImportJob.objects.filter(pk=job.pk, claim_token=token).update(
        heartbeat_at=timezone.now()
    ):
        raise ImportClaimLost(
            f"Import job {job.pk} stopped: its claim was taken (its heartbeat went stale), so "
            "this run writes nothing more."
        )


class ClaimHeartbeat(Heartbeat):
    """While a run works, its job's row is stamped every OUTFITS_IMPORT_HEARTBEAT_SECONDS,
    only while the row carries this run's token. Whether the run still holds the job is
    decided by its chunk commits (`_hold_claim`)."""

    def __init__(self, job_id: int, token: str) -> None:
        super().__init__(f"import job {job_id}", settings.OUTFITS_IMPORT_HEARTBEAT_SECONDS)
        self.job_id, self.token = job_id, token

    def beat(self) -> None:
        ImportJob.objects.filter(pk=self.job_id, claim_token=self.token).update(
            heartbeat_at=timezone.now()
        )


def interrupt_stale_import_jobs() -> list[int]:
    """Mark interrupted the running jobs whose run stopped sending heartbeats (its worker was
    killed or lost its machine) and release their claim: they wait for staff to resume them
    (admin, or `manage.py resume_import`), and continue after their last committed chunk. A
    run that was only frozen finds its claim gone at its next chunk and stops."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.OUTFITS_IMPORT_STALE_SECONDS)
    stale = ImportJob.objects.filter(status=ImportJob.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    interrupted = []
    for job in stale:
        last_sign = job.heartbeat_at or job.started_at
        # Conditional: a chunk committed meanwhile (a fresh heartbeat) keeps the job its run's.
        if (
            ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING)
            .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
            .update(
                status=ImportJob.Status.INTERRUPTED,
                claim_token="",
                message=(
                    f"Interrupted: its worker ({job.worker or 'unknown'}) stopped sending "
                    f"heartbeats {(now - last_sign).total_seconds():.0f} s ago (killed or lost) "
                    f"after line {job.resume_after_line}. Resume it to continue from there."
                ),
            )
        ):
            interrupted.append(job.pk)
    if interrupted:
        logger.warning("import job(s) %s lost their worker: marked interrupted", interrupted)
    return interrupted


def resume_import_job(job: ImportJob) -> None:
    """Staff's Resume: enqueue an interrupted job again (it continues after its checkpoint)."""
    interrupt_stale_import_jobs()
    job.refresh_from_db()
    if job.status != ImportJob.Status.INTERRUPTED:
        raise ValueError(
            f"Import job {job.pk} is {job.status}: only an interrupted job (its worker stopped "
            "sending heartbeats) can be resumed."
        )
    enqueue_import_job(job)


def _images_folder(job: ImportJob, token: str) -> Path | None:
    if job.images_archive:
        # A folder per run: a stale run that stops must not remove the images of the next.
        # What killed runs left is removed here (they hold the job no more: this run does).
        extracted = Path(import_files_storage().path("extracted"))
        for leftover in extracted.glob(f"job-{job.pk}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        destination = extracted / f"job-{job.pk}-{token[:8]}"
        return extract_archive(Path(job.images_archive.path), destination)
    if job.images_folder:
        return (
            Path(job.images_folder) if job.trusted_paths else check_images_folder(job.images_folder)
        )
    return None


def run_import_job(job_id: int, progress: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Carry out a job; safe to call again for an interrupted job (it resumes) or a finished
    one (nothing happens). Whole-file problems fail the job with a message; row problems are
    recorded as rejections and never stop the other rows. Raises ImportJobBusy while another
    run holds the job, ImportClaimLost when this run's claim is taken mid-way (it stopped)."""
    claimed = _claim(job_id)
    if claimed is None:
        return ImportJob.objects.get(pk=job_id)
    job, token = claimed
    with ClaimHeartbeat(job.pk, token):
        _run_claimed(job, token, progress)
    release_files(job)
    if progress:
        progress(job)
    logger.info("import job %s %s: %s", job.pk, job.status, job.message)
    return job


def _run_claimed(job: ImportJob, token: str, progress: Callable[[ImportJob], None] | None) -> None:
    extracted: Path | None = None
    try:
        path = Path(job.source.path)
        layout = detect_layout(path, job.original_name)
        importer_type = importer_class(job.kind)
        columns = resolve_columns(
            layout,
            job.column_mapping,
            importer_type.known_fields,
            importer_type.required_fields,
            job.original_name,
        )
        folder = _images_folder(job, token)
        extracted = folder if job.images_archive else None
        roots = [Path("/")] if job.trusted_paths else settings.OUTFITS_IMPORT_ROOTS
        sources = ImageSources(
            folder,
            roots,
            UrlFetcher(
                timeout=settings.OUTFITS_IMAGE_FETCH_TIMEOUT,
                allowed_networks=settings.OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS,
            ),
        )
        importer = importer_type(job, columns, sources)
        if not importer.resumable and job.resume_after_line:
            _restart_from_scratch(job, token)
        job.encoding, job.delimiter, job.lines_total = (
            layout.encoding,
            layout.delimiter,
            count_lines(path),
        )
        job.save(update_fields=["encoding", "delimiter", "lines_total"])
        rows = (
            (line, row) for line, row in iter_rows(path, layout) if line > job.resume_after_line
        )
        for chunk in chunks(rows, settings.OUTFITS_IMPORT_CHUNK_ROWS):
            _apply_chunk(job, token, importer, chunk, layout.encoding)
            if progress:
                progress(job)
        with transaction.atomic():
            _hold_claim(job, token)
            report = ImportReport()
            importer.finish(report)
            _record(job, report, last_line=job.lines_total)
        refresh_planner_statistics()
        job.refresh_from_db()
        job.status = ImportJob.Status.SUCCEEDED
        job.lines_done = job.lines_total
        job.message = _summary(job)
    except ImportClaimLost:
        logger.warning("import job %s: this run lost its claim and stopped", job.pk)
        raise
    except (CsvFormatError, ArchiveRejected, ValueError) as error:
        job.status, job.message = ImportJob.Status.FAILED, str(error)
    except Exception as error:
        logger.exception("import job %s failed", job.pk)
        job.status, job.message = ImportJob.Status.FAILED, f"{type(error).__name__}: {error}"
    finally:
        if extracted is not None:
            shutil.rmtree(extracted, ignore_errors=True)
    job.finished_at = timezone.now()
    # The outcome is this run's to write only while it holds the claim.
    if not ImportJob.objects.filter(pk=job.pk, claim_token=token).update(
        status=job.status,
        message=job.message,
        lines_done=job.lines_done,
        finished_at=job.finished_at,
    ):
        raise ImportClaimLost(
            f"Import job {job.pk} stopped: its claim was taken before it could record its outcome."
        )
    if not job.dry_run and job.kind == ImportJob.Kind.CATALOG:
        catalog_changed.send(sender=ImportJob, job=job)


def release_files(job: ImportJob) -> None:
    """What an ended job no longer needs leaves the disk: its images zip (a succeeded dry run
    keeps it for Apply), and a failed job's CSV too (refused; a failed job is never resumed
    nor applied). A succeeded job's CSV stays, for staff who may view it. A file another job
    still names (a dry run and the import that applied it share the CSV) stays."""
    released = []
    if job.images_archive and not (job.dry_run and job.status == ImportJob.Status.SUCCEEDED):
        released.append(job.images_archive.name)
        job.images_archive = ""
    if job.source and job.status == ImportJob.Status.FAILED:
        released.append(job.source.name)
        job.source = ""
    if not released:
        return
    job.save(update_fields=["source", "images_archive"])
    _delete_stored(
        name
        for name in released
        if not ImportJob.objects.filter(Q(source=name) | Q(images_archive=name)).exists()
    )


def _delete_stored(names: Iterable[str]) -> None:
    storage = import_files_storage()
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            logger.exception("could not delete import file %s", name)


def refresh_planner_statistics() -> None:
    """ANALYZE the catalog's tables (PostgreSQL). Autovacuum does it too, but only some time
    after a bulk load: until then the planner believes the product table is empty and scans it
    whole for the matches query (7 ms instead of 0.6 ms at 20k products)."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (Product, Category))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _apply_chunk(
    job: ImportJob, token: str, importer: RowImporter, chunk: list[Row], encoding: str
) -> None:
    report = ImportReport()
    clean: list[Row] = []
    for line, row in chunk:
        garbled = next((column for column, value in row.items() if REPLACEMENT in value), None)
        if garbled is not None:
            report.reject(
                line, garbled, row[garbled], f"contains bytes that are not valid {encoding}"
            )
        else:
            clean.append((line, row))
    with transaction.atomic():
        _hold_claim(job, token)
        importer.apply(clean, report)
        _record(job, report, last_line=chunk[-1][0] if importer.resumable else 0)
        job.lines_done = chunk[-1][0]
        # Stamped again at the commit: a slow chunk does not leave the job looking stale.
        ImportJob.objects.filter(pk=job.pk).update(
            lines_done=job.lines_done, heartbeat_at=timezone.now()
        )


def _record(job: ImportJob, report: ImportReport, last_line: int) -> None:
    ImportRejection.objects.bulk_create(
        ImportRejection(
            job=job, line=r.line, column=r.column[:300], value=r.value[:2000], reason=r.reason
        )
        for r in report.rejected
    )
    changes = {
        "created": F("created") + report.created,
        "updated": F("updated") + report.updated,
        "unchanged": F("unchanged") + report.unchanged,
        "rejected": F("rejected") + report.rejected_lines,
        "deactivated": F("deactivated") + report.deactivated,
    }
    if last_line:
        changes["resume_after_line"] = last_line
    ImportJob.objects.filter(pk=job.pk).update(**changes)
    if last_line:
        job.resume_after_line = last_line


def _restart_from_scratch(job: ImportJob, token: str) -> None:
    with transaction.atomic():
        _hold_claim(job, token)
        job.rejections.all().delete()
        ImportJob.objects.filter(pk=job.pk).update(
            created=0, updated=0, unchanged=0, rejected=0, deactivated=0, resume_after_line=0
        )
        job.resume_after_line = 0


def _summary(job: ImportJob) -> str:
    would = "would be " if job.dry_run else ""
    parts = [
        f"{job.created} {would}created",
        f"{job.updated} {would}updated",
        f"{job.unchanged} unchanged",
        f"{job.rejected} rejected",
    ]
    if job.deactivate_missing:
        parts.append(f"{job.deactivated} {would}deactivated")
    return ("Dry run: nothing was written. " if job.dry_run else "") + ", ".join(parts)


def import_file(
    kind: str, path: Path, *, run: bool = True, progress=None, **options: Any
) -> ImportJob:
    """Import a file on this machine, as its user (paths anywhere; relative image paths from
    the file's folder unless `images_folder` says otherwise): record the job, then run it here
    (`run`) or enqueue it."""
    options.setdefault("images_folder", str(path.resolve().parent))
    with path.open("rb") as handle:
        job = create_import_job(
            kind, File(handle, name=path.name), path.name, trusted_paths=True, **options
        )
    if run:
        return run_import_job(job.pk, progress=progress)
    enqueue_import_job(job)
    return job
