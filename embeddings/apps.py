from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Compatibility model"

    def ready(self) -> None:
        from catalog.changes import track_changes
        from catalog.signals import catalog_changed

        from .models import ModelVersion
        from .version_refresh import request_refresh

        track_changes(ModelVersion)
        catalog_changed.connect(request_refresh, dispatch_uid="refresh-active-version")
