from django.apps import AppConfig


class OutfitsConfig(AppConfig):
    name = "outfits"
    verbose_name = "Curated outfits"

    def ready(self) -> None:
        from catalog.changes import track_changes
        from catalog.import_jobs import register_importer
        from catalog.models import ImportJob
        from embeddings.versions import VERSIONS_IN_USE

        from .models import ApiKey, BlockedPair, BlockedProduct, Experiment, PinnedMatch
        from .outfit_rows import OutfitRowImporter

        for model in (PinnedMatch, BlockedPair, BlockedProduct, ApiKey, Experiment):
            track_changes(model)
        VERSIONS_IN_USE.append(Experiment.versions_in_use)  # a test's versions outlive clean-ups
        register_importer(ImportJob.Kind.OUTFITS, OutfitRowImporter)
        # The serving snapshot is checked against the change counter once per request.
        from django.core.signals import request_finished, request_started

        from . import serving

        request_started.connect(serving.request_started, dispatch_uid="serving-request")
        request_finished.connect(serving.request_finished, dispatch_uid="serving-request")
        # Failed password logins, counted per username and address (brute-force lockout).
        from django.contrib.auth.signals import user_login_failed

        from .login_throttle import count_failed_login

        user_login_failed.connect(count_failed_login, dispatch_uid="login-throttle")
