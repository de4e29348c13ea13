"""manage.py refresh_version"""

from django.core.management.base import BaseCommand, CommandError

from embeddings.engine.progress import TerminalProgress
from embeddings.version_refresh import RefreshBusy, refresh_active_version


class Command(BaseCommand):
    help = (
        "Refresh the active model version with the catalog's changes, without retraining: "
        "new and changed products embedded by its own model and matched both ways, removed "
        "ones taken out."
    )

    def handle(self, *args, **options) -> None:
        bar = TerminalProgress()
        try:
            refresh = refresh_active_version(progress=bar)
        except RefreshBusy as busy:
            raise CommandError(str(busy)) from busy
        finally:
            bar.close()
        if refresh is None:
            raise CommandError("No model version is active: train one first (manage.py train).")
        self.stdout.write(
            self.style.SUCCESS(
                f"{refresh.version}: {refresh.added} added, {refresh.changed} changed, "
                f"{refresh.removed} removed in {refresh.seconds:.1f} s"
                + (f" ({refresh.message})" if refresh.message else "")
            )
        )
