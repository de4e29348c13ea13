"""manage.py setup_demo: everything `make demo` does before serving, idempotently."""

import logging
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from catalog.demo_catalog import generate_demo_catalog
from embeddings.engine.progress import TerminalProgress
from embeddings.models import ModelVersion
from outfits.api_keys import create_api_key, find_api_key

ADMIN_USERNAME = "admin"
# The demo shop's pictures: sharp on a product page (420 px wide), whatever the model reads.
DEMO_IMAGE_SIZE = 480
# Under settings.VAR_DIR, readable by their owner only: `serve_demo` prints them.
ADMIN_PASSWORD_FILE = "demo-admin-password.txt"
API_KEY_FILE = "demo-api-key.txt"


def quiet_logs(verbosity: int) -> None:
    """The demo's steps say what happens; the log's INFO lines (each import job, each model
    load, Celery's eager tasks) would bury that. Warnings and errors still show; `-v 2` shows
    everything."""
    if verbosity < 2:
        logging.getLogger().setLevel(logging.WARNING)


class Command(BaseCommand):
    help = (
        "Set up the demo shop: migrate, draw and import a demo catalog with outfits, build the "
        "offline backbone, train and activate the compatibility model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products-per-category", type=int, default=40)
        parser.add_argument("--outfits", type=int, default=240)
        # 10: the demo model fills the blanks as well as with 30 in a third of the time
        # (docs/model.md, "The demo's backbone").
        parser.add_argument("--pretrain-epochs", type=int, default=10)
        parser.add_argument(
            "--retrain",
            action="store_true",
            help="Train a new model version even if one is active.",
        )

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n==> {text}"))

    def handle(
        self,
        *args,
        products_per_category: int,
        outfits: int,
        pretrain_epochs: int,
        retrain: bool,
        **options,
    ) -> None:
        started = time.monotonic()
        quiet_logs(options["verbosity"])
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        self.step("Database")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.ensure_admin()
        self.ensure_demo_api_key()

        self.step("Drawing the demo catalog")
        bar = TerminalProgress()
        demo = generate_demo_catalog(
            # Under the default import root, so the admin upload page can use its images too.
            settings.VAR_DIR / "imports" / "demo-catalog",
            products_per_category=products_per_category,
            outfit_count=outfits,
            image_size=DEMO_IMAGE_SIZE,
            progress=lambda done, total: bar("drawing images", done, total),
        )
        bar.close()
        self.stdout.write(
            f"{demo.product_count} products, {demo.outfit_count} outfits "
            f"in {demo.products_csv.parent}"
        )

        self.step("Importing the catalog and outfits")
        call_command("import_catalog", str(demo.products_csv))
        call_command("import_outfits", str(demo.outfits_csv))

        from embeddings.engine.backbone import OWN_BACKBONES  # torch: only where it trains

        backbone = Path(settings.OUTFITS_PRETRAINED)
        if settings.OUTFITS_BACKBONE in OWN_BACKBONES and not backbone.is_file():
            self.step("Pretraining the offline backbone on catalog images and titles")
            call_command("pretrain_backbone", epochs=pretrain_epochs)

        if retrain or not ModelVersion.objects.filter(is_active=True).exists():
            self.step("Training the compatibility model")
            call_command("train")
        else:
            self.stdout.write("An active model version exists; pass --retrain for a new one.")

        self.step(f"Set up in {time.monotonic() - started:.0f} s")
        self.stdout.write(
            "`manage.py serve_demo` serves it, and prints the addresses, the admin's password "
            f"(also in {settings.VAR_DIR / ADMIN_PASSWORD_FILE}) and a storefront API key."
        )

    def ensure_demo_api_key(self) -> str:
        """A storefront API key for trying the API; kept in var/ (only its hash is in the
        database), made again if it was revoked."""
        key_file = settings.VAR_DIR / API_KEY_FILE
        if key_file.exists() and find_api_key(key_file.read_text()):
            return key_file.read_text().strip()
        _, raw_key = create_api_key(
            "Demo storefront", ["http://127.0.0.1:8000", "http://localhost:8000"]
        )
        key_file.write_text(raw_key)
        key_file.chmod(0o600)
        return raw_key

    def ensure_admin(self) -> str:
        """The demo's superuser; its random password is kept in var/ so reruns print the same."""
        password_file = settings.VAR_DIR / ADMIN_PASSWORD_FILE
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        user, _ = get_user_model().objects.get_or_create(
            username=ADMIN_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password
