"""Staff-only pages outside the admin's model pages: the shopper photos kept with consent, the
export of every product's matches (written by a worker, then downloaded) and the assortment
gaps."""

from collections.abc import Iterable

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from catalog.shopper_photos import kept_photo_names, kept_photo_path
from outfits.exports import export_files, export_path, mark_queued, new_export_name
from outfits.gaps import assortment_gaps, gap_csv_lines
from outfits.tasks import export_matches_file

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


@never_cache
@staff_member_required
def export_matches(request: HttpRequest) -> HttpResponse:
    """The export's options, and the exports written and being written: a submitted export is
    written by a worker (a large catalog's takes minutes, longer than a web request may
    last), then downloaded from this page."""
    require_catalog_view(request, "Exporting matches")
    form = ExportMatchesForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        options = form.cleaned_data
        name = new_export_name(options["format"])
        mark_queued(name)  # listed, and the page reloading, until a worker has written it
        try:
            export_matches_file.delay(
                name,
                options["limit"],
                options["filter_words"],
                request.build_absolute_uri("/")[:-1],
            )
        except Exception as error:  # the broker is down: nothing was started
            mark_queued(name, queued=False)
            messages.error(
                request,
                f"The export could not be queued ({type(error).__name__}): the task broker "
                "did not take it. Try again once it is back.",
            )
        else:
            messages.success(request, f"Export {name} started: it is listed below when written.")
        return HttpResponseRedirect(reverse("export-matches"))
    files = export_files()
    return render(
        request,
        "shop/export_matches.html",
        {
            **admin.site.each_context(request),
            "title": "Export matches",
            "form": form,
            "files": files,
            "writing": any(not f.ready for f in files),
        },
    )


@staff_member_required
def export_download(request: HttpRequest, name: str) -> FileResponse:
    require_catalog_view(request, "Exporting matches")
    path = export_path(name)
    if path is None:
        raise Http404("No finished export by that name.")
    file_format = name.rsplit(".", 1)[1]
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=name,
        content_type=EXPORT_CONTENT_TYPES[file_format],
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
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
