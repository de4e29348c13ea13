"""Site URLs: shop pages, the storefront API under /api/v1/, the admin, and uploaded media."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("outfits.api.urls")),
    path("", include("catalog.urls")),
]

if settings.OUTFITS_SERVE_MEDIA:
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]
