"""manage.py resume_import JOB_ID"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.import_jobs import ImportNotRun, run_import_job
from catalog.models import ImportJob


class Command(BaseCommand):
    help = (
        "Run an import job again: an interrupted one (its worker was lost) continues after its "
        "last committed chunk; a finished one is left alone; one a live worker is running "
        "(a fresh heartbeat) is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=int)

    def handle(self, *args, job_id: int, **options) -> None:
        if not ImportJob.objects.filter(pk=job_id).exists():
            raise CommandError(f"There is no import job {job_id}")
        try:
            job = run_import_job(job_id)
        except ImportNotRun as refused:
            raise CommandError(str(refused)) from None
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"Import job {job_id} failed: {job.message}")
        self.stdout.write(self.style.SUCCESS(f"Import job {job_id}: {job.message}"))
