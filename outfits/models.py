"""Stylist-curated outfits: the training labels of the compatibility model."""

from django.db import models

from catalog.models import Product


class Outfit(models.Model):
    external_id = models.CharField("outfit id", max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    products = models.ManyToManyField(Product, through="OutfitItem", related_name="outfits")

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"Outfit {self.external_id}"


class OutfitItem(models.Model):
    outfit = models.ForeignKey(Outfit, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="outfit_items")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["outfit", "position"]
        constraints = [
            models.UniqueConstraint(fields=["outfit", "product"], name="unique_product_per_outfit")
        ]

    def __str__(self) -> str:
        return f"{self.outfit.external_id}: {self.product.sku}"
