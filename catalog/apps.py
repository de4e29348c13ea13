from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from .changes import track_changes
        from .models import Category, Product

        track_changes(Product)
        track_changes(Category)
