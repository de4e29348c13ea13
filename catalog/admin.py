from django.contrib import admin
from django.utils.html import format_html

from .models import Category, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail",
        "sku",
        "title",
        "category",
        "colour",
        "price",
        "in_stock",
        "active",
    ]
    list_display_links = ["thumbnail", "sku"]
    list_filter = ["category", "active", "in_stock"]
    list_editable = ["in_stock", "active"]
    search_fields = ["sku", "title"]
    readonly_fields = ["image_sha256", "created_at", "updated_at"]
    list_per_page = 50

    @admin.display(description="")
    def thumbnail(self, product: Product) -> str:
        if not product.image:
            return ""
        return format_html(
            '<img src="{}" alt="" width="48" height="48" style="object-fit:contain">',
            product.image.url,
        )
