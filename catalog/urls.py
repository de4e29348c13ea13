from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("match/", views.match_photo, name="match-photo"),
    path("products/<str:sku>/", views.product_detail, name="product-detail"),
    path("products/<str:sku>/look/", views.complete_look, name="complete-look"),
]
