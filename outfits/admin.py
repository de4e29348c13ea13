from django.contrib import admin

from .models import Outfit, OutfitItem


class OutfitItemInline(admin.TabularInline):
    model = OutfitItem
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Outfit)
class OutfitAdmin(admin.ModelAdmin):
    list_display = ["external_id", "item_count", "created_at"]
    search_fields = ["external_id", "items__product__sku"]
    inlines = [OutfitItemInline]

    @admin.display(description="items")
    def item_count(self, outfit: Outfit) -> int:
        return outfit.items.count()
