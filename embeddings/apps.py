from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    verbose_name = "Compatibility model"

    def ready(self) -> None:
        from catalog.changes import track_changes

        from .models import ModelVersion

        track_changes(ModelVersion)
