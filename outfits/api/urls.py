from django.urls import path

from .views import ProductMatchesView

app_name = "api-v1"
urlpatterns = [
    path("products/<str:sku>/matches/", ProductMatchesView.as_view(), name="product-matches"),
]
