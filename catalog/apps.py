from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from .catalog_rows import CatalogRowImporter
        from .changes import track_changes
        from .import_jobs import register_importer
        from .models import Category, ImportJob, Product

        track_changes(Product)
        track_changes(Category)
        register_importer(ImportJob.Kind.CATALOG, CatalogRowImporter)
