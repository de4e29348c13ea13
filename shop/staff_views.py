"""Staff-only pages outside the admin's model pages: the shopper photos kept with consent, and
the download of every product's matches."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from catalog.shopper_photos import kept_photo_names, kept_photo_path
from outfits.exports import export_lines
from outfits.match_filters import MatchFilters

from .forms import ExportMatchesForm

EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@staff_member_required
def kept_photos(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/kept_photos.html",
        {
            **admin.site.each_context(request),
            "title": "Kept shopper photos",
            "names": kept_photo_names(),
        },
    )


@staff_member_required
def kept_photo(request: HttpRequest, name: str) -> FileResponse:
    path = kept_photo_path(name)
    if path is None:
        raise Http404("No kept photo by that name.")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"  # never in a shared cache
    return response


@staff_member_required
def export_matches(request: HttpRequest) -> HttpResponse:
    """The page with the export's options; with `download`, the file itself, streamed a
    product at a time (a large catalog's export starts at once and holds little memory)."""
    if not request.user.has_perm("catalog.view_product"):
        raise PermissionDenied("Exporting matches needs the permission catalog.view_product.")
    form = ExportMatchesForm(request.GET if "download" in request.GET else None)
    if form.is_valid():
        options = form.cleaned_data
        filters: MatchFilters = options["filters"]
        file_format = options["format"]
        lines = export_lines(
            file_format, options["limit"], filters, request.build_absolute_uri("/")[:-1]
        )
        response = StreamingHttpResponse(lines, content_type=EXPORT_CONTENT_TYPES[file_format])
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="matches-{stamp}.{file_format}"'
        response["Cache-Control"] = "private, no-store"
        return response
    return render(
        request,
        "shop/export_matches.html",
        {**admin.site.each_context(request), "title": "Export matches", "form": form},
    )
