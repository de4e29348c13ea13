from django.apps import AppConfig


class OutfitsConfig(AppConfig):
    name = "outfits"
    verbose_name = "Curated outfits"
