from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from .changes import ProductQuerySet, track_changes
        from .models import Category, Product

        track_changes(Product, lambda product: [product.pk], ProductQuerySet.unserved_fields)
        track_changes(Category, lambda category: None)
