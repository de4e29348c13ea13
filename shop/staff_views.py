"""Staff-only pages outside the admin's model pages: the shopper photos kept with consent, and
the download of every product's matches."""

from collections.abc import Iterable

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from catalog.shopper_photos import kept_photo_names, kept_photo_path
from outfits.exports import export_lines
from outfits.gaps import assortment_gaps, gap_csv_lines
from outfits.match_filters import MatchFilters

from .forms import AssortmentGapsForm, ExportMatchesForm

GAP_ROWS_SHOWN = 200
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


def streamed_download(lines: Iterable[str], name: str, file_format: str) -> StreamingHttpResponse:
    """A file written as it downloads, named with the time it was made, kept by no cache."""
    response = StreamingHttpResponse(lines, content_type=EXPORT_CONTENT_TYPES[file_format])
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{file_format}"'
    response["Cache-Control"] = "private, no-store"
    return response


def require_catalog_view(request: HttpRequest, what: str) -> None:
    if not request.user.has_perm("catalog.view_product"):
        raise PermissionDenied(f"{what} needs the permission catalog.view_product.")


@staff_member_required
def export_matches(request: HttpRequest) -> HttpResponse:
    """The page with the export's options; with `download`, the file itself, streamed a
    product at a time (a large catalog's export starts at once and holds little memory)."""
    require_catalog_view(request, "Exporting matches")
    form = ExportMatchesForm(request.GET if "download" in request.GET else None)
    if form.is_valid():
        options = form.cleaned_data
        filters: MatchFilters = options["filters"]
        file_format = options["format"]
        lines = export_lines(
            file_format, options["limit"], filters, request.build_absolute_uri("/")[:-1]
        )
        return streamed_download(lines, "matches", file_format)
    return render(
        request,
        "shop/export_matches.html",
        {**admin.site.each_context(request), "title": "Export matches", "form": form},
    )


@staff_member_required
def gaps(request: HttpRequest) -> HttpResponse:
    """The assortment-gap report of the active version; `download=csv` gives every gap."""
    require_catalog_view(request, "The assortment-gap report")
    form = AssortmentGapsForm(request.GET)
    options = form.cleaned_data if form.is_valid() else {}
    chosen = options.get("category")
    report = assortment_gaps(options.get("threshold"), chosen.name if chosen else None)
    if request.GET.get("download") == "csv":
        lines = gap_csv_lines(report, request.build_absolute_uri("/")[:-1])
        return streamed_download(lines, "assortment-gaps", "csv")
    return render(
        request,
        "shop/assortment_gaps.html",
        {
            **admin.site.each_context(request),
            "title": "Assortment gaps",
            "form": form,
            "report": report,
            "gaps": report.gaps[:GAP_ROWS_SHOWN],
            "coverage": report.coverage[:40],
            "query": request.GET.urlencode(),
        },
    )
