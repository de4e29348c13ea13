"""manage.py serve_demo: what `make demo` serves with. The web server, and beside it a Celery
worker process, so the admin's Retrain runs in the background with live progress as in
production. Without a configured broker, the two talk through a folder under var/."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from embeddings.loaded_versions import photo_encoders
from embeddings.models import ModelVersion

from .setup_demo import ADMIN_PASSWORD_FILE, ADMIN_USERNAME, API_KEY_FILE, quiet_logs

FOLDER_BROKER = "folder://localhost/"  # outfits/folder_broker.py
WORKER_LOG = "demo-worker.log"  # under settings.VAR_DIR


class Command(BaseCommand):
    help = "Serve the demo shop with a background Celery worker for retraining and imports."
    stopping = False  # set once the server stops: the worker's exit is then expected

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, address: str, **options) -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # Settings are read once per process: this one re-executes itself with the broker.
            env = {**os.environ, "CELERY_BROKER_URL": FOLDER_BROKER}
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
        quiet_logs(options["verbosity"])
        # The worker writes to a file: its start-up warnings (as root, Celery's own) would
        # scroll the block below away. The block names the file; a worker that dies says so.
        worker_log_path = settings.VAR_DIR / WORKER_LOG
        worker_log = worker_log_path.open("a")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "outfits",
                "--quiet",  # no banner: the demo's own block below is what to read
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
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        worker_log.close()  # the worker has its own copy
        # Ctrl-C and a plain `kill` stop the server and its worker: exit through `finally`.
        # SIGINT is set explicitly: a process started in the background by a shell inherits it
        # ignored, and Python then leaves it so.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        active = ModelVersion.objects.filter(is_active=True).first()
        if active is not None:
            photo_encoders.warm(active)  # so the first photo does not wait for torch to load
        host, _, port = address.rpartition(":")
        threading.Thread(
            target=self.announce_when_listening,
            args=(host or "127.0.0.1", int(port), worker, worker_log_path),
            daemon=True,
        ).start()
        try:
            call_command("runserver", address, use_reloader=False)
        finally:
            self.stopping = True
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()

    def announce_when_listening(
        self, host: str, port: int, worker: subprocess.Popen, worker_log: Path
    ) -> None:
        """Once the server answers, the block a new user needs, last on the screen: under
        runserver's banner, not scrolled away by it."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            return  # runserver says why it could not listen
        self.stdout.write(ready_block(f"http://{host}:{port}", worker.pid, worker_log))
        if worker.wait() != 0 and not self.stopping:  # it died: Retrain would wait for ever
            self.stderr.write(
                f"The Celery worker stopped (exit {worker.returncode}): Retrain and imports "
                f"will not run. Its log, {worker_log}, ends:\n"
                + "\n".join(worker_log.read_text().splitlines()[-15:])
            )


def ready_block(url: str, worker_pid: int, worker_log: Path) -> str:
    password_file = settings.VAR_DIR / ADMIN_PASSWORD_FILE
    key_file = settings.VAR_DIR / API_KEY_FILE
    admin = f"{url}/admin/"
    if password_file.exists():
        admin += f"   user {ADMIN_USERNAME}   password {password_file.read_text().strip()}"
    api = f"{url}/api/docs/"
    if key_file.exists():
        api += f"   header  Authorization: Api-Key {key_file.read_text().strip()}"
    rule = "─" * 78
    return "\n".join(
        [
            "",
            rule,
            "  The demo shop is running.",
            f"  Shop   {url}/",
            f"  Admin  {admin}",
            f"  API    {api}",
            f"  Stop   Ctrl-C (stops the web server and its Celery worker, pid {worker_pid})",
            f"  Worker log  {worker_log}",
            rule,
            "",
        ]
    )
