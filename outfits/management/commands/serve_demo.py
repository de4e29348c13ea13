"""manage.py serve_demo: what `make demo` serves with. The web server, and beside it a Celery
worker process, so the admin's Retrain runs in the background with live progress as in
production. Without a configured broker, the two talk through a folder under var/."""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

FOLDER_BROKER = "filesystem://localhost/"


class Command(BaseCommand):
    help = "Serve the demo shop with a background Celery worker for retraining and imports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, address: str, **options) -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # Settings are read once per process: this one re-executes itself with the broker.
            env = {**os.environ, "CELERY_BROKER_URL": FOLDER_BROKER}
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "outfits",
                "worker",
                "-Q",
                f"{settings.OUTFITS_TRAINING_QUEUE},{settings.OUTFITS_REFRESH_QUEUE},"
                f"{settings.CELERY_TASK_DEFAULT_QUEUE}",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],  # fmt: skip
            cwd=settings.BASE_DIR,
        )
        self.stdout.write(
            f"Celery worker started (pid {worker.pid}, broker {settings.CELERY_BROKER_URL})."
        )
        # A plain `kill` of this process must stop its worker too: exit through `finally`.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            call_command("runserver", address, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
