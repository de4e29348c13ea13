from django.urls import path

from . import views

app_name = "shop"
# SKUs may contain "/" (retail SKUs often do), hence `path:`; the longer route comes first so
# that /products/<sku>/look/ is not read as the page of a product "<sku>/look" (the importer
# rejects SKUs whose address would be another page's: catalog.catalog_rows.sku_problem).
urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("match/", views.match_photo, name="match-photo"),
    path("products/<path:sku>/look/", views.complete_look, name="complete-look"),
    path("products/<path:sku>/verdict/", views.pair_verdict, name="pair-verdict"),
    path("products/<path:sku>/", views.product_detail, name="product-detail"),
]
