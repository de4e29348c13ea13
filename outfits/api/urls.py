from django.urls import path

from catalog.api.views import ImportJobDetailView, ImportJobListView, ImportJobRejectionsView

from .views import ProductMatchesView

app_name = "api-v1"
urlpatterns = [
    path("products/<str:sku>/matches/", ProductMatchesView.as_view(), name="product-matches"),
    path("imports/", ImportJobListView.as_view(), name="import-list"),
    path("imports/<int:job_id>/", ImportJobDetailView.as_view(), name="import-detail"),
    path(
        "imports/<int:job_id>/rejections.csv",
        ImportJobRejectionsView.as_view(),
        name="import-rejections",
    ),
]
