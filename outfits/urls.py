"""Site URLs: shop pages, the storefront API under /api/v1/, the admin, and uploaded media."""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from outfits.health import healthz, readyz
from outfits.metrics import metrics_view
from outfits.security import API_DOCS_POLICY, content_security_policy
from shop.staff_views import export_download, export_matches, gaps, kept_photo, kept_photos

# The docs pages run no inline script: Swagger UI's start script is a file (the split view).
docs_page = content_security_policy(API_DOCS_POLICY)

urlpatterns = [
    # Probes: the process lives (no database); it can serve (database, cache, broker, model).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Staff-only: shoppers' kept photos (private files, not under /media/).
    path("admin/shopper-photos/", kept_photos, name="kept-photos"),
    path("admin/shopper-photos/<str:name>", kept_photo, name="kept-photo"),
    path("admin/export-matches/", export_matches, name="export-matches"),
    path("admin/export-matches/<str:name>", export_download, name="export-download"),
    path("admin/assortment-gaps/", gaps, name="assortment-gaps"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico whatever the page links to.
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"))),
    path("api/v1/", include("outfits.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        docs_page(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        docs_page(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    path("", include("shop.urls")),
]

if settings.OUTFITS_SERVE_MEDIA:
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]

# Under /api/ every error is JSON in the API's error shape; elsewhere Django's HTML pages.
handler400 = "outfits.api.errors.bad_request"
handler403 = "outfits.api.errors.permission_denied"
handler404 = "outfits.api.errors.not_found"
handler500 = "outfits.api.errors.server_error"
