from django.urls import path

from . import views
from .imports import ImportJobDetailView, ImportJobListView, ImportJobRejectionsView

app_name = "api-v1"
urlpatterns = [
    path("products/", views.ProductListView.as_view(), name="product-list"),
    # `path:` for SKUs with "/", the longer route first (as in shop/urls.py).
    path(
        "products/<path:sku>/matches/", views.ProductMatchesView.as_view(), name="product-matches"
    ),
    path("products/<path:sku>/", views.ProductDetailView.as_view(), name="product-detail"),
    path("matches/", views.MatchPagesView.as_view(), name="match-pages"),
    path("matches/batch/", views.BatchMatchesView.as_view(), name="matches-batch"),
    path("outfits/complete/", views.CompleteOutfitView.as_view(), name="outfit-complete"),
    path("matches/by-image/", views.ImageMatchesView.as_view(), name="matches-by-image"),
    path("events/", views.EventListView.as_view(), name="events"),
    path("imports/", ImportJobListView.as_view(), name="import-list"),
    path("imports/<int:job_id>/", ImportJobDetailView.as_view(), name="import-detail"),
    path(
        "imports/<int:job_id>/rejections.csv",
        ImportJobRejectionsView.as_view(),
        name="import-rejections",
    ),
]
