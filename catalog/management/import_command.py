"""What `import_catalog` and `import_outfits` share: options, a progress bar, the report."""

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.csv_import import CsvFormatError, parse_mapping
from catalog.import_jobs import ImportNotRun, import_file
from catalog.models import ImportJob
from embeddings.engine.progress import TerminalProgress

REJECTIONS_SHOWN = 20


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv_file", type=Path)
    parser.add_argument(
        "--mapping",
        default="",
        help="Our field=your column pairs, e.g. 'sku=cod_modelo_color,image=des_filename'.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Report what would change; write nothing."
    )
    parser.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="Enqueue the import on Celery and return at once.",
    )


def run_import_command(command: BaseCommand, kind: str, options: dict, **job_options) -> ImportJob:
    """Run (or enqueue) an import of `options["csv_file"]`; `job_options` go to the job."""
    csv_file: Path = options["csv_file"]
    mapping, dry_run, run_async = options["mapping"], options["dry_run"], options["run_async"]
    if not csv_file.is_file():
        raise CommandError(f"{csv_file} does not exist")
    try:
        column_mapping = parse_mapping(mapping)
    except CsvFormatError as error:
        raise CommandError(str(error)) from error
    bar = TerminalProgress()

    def show(job: ImportJob) -> None:
        bar(f"importing {kind}", job.lines_done, max(job.lines_total, job.lines_done))

    try:
        # No transaction around this: the job commits chunk by chunk, and on_commit enqueues
        # at once in autocommit mode.
        job = import_file(
            kind,
            csv_file,
            run=not run_async,
            progress=show,
            column_mapping=column_mapping,
            dry_run=dry_run,
            **job_options,
        )
    except (ValueError, ImportNotRun) as error:
        raise CommandError(str(error)) from error
    finally:
        bar.close()
    if run_async:
        command.stdout.write(f"Import job {job.pk} queued.")
        return job
    shown = job.rejections.all()[:REJECTIONS_SHOWN]
    for row in shown:
        command.stderr.write(
            f"  rejected line {row.line}: {row.column}={row.value!r}: {row.reason}"
        )
    if job.rejected > len(shown):
        command.stderr.write(
            f"  … {job.rejected - len(shown)} more rejected rows: see import "
            f"job {job.pk} in the admin for the full report"
        )
    if job.status != ImportJob.Status.SUCCEEDED:
        raise CommandError(f"Import failed: {job.message}")
    command.stdout.write(command.style.SUCCESS(job.message))
    return job
