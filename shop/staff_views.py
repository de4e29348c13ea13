"""Staff-only pages outside the admin's model pages: the shopper photos kept with consent."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.shopper_photos import kept_photo_names, kept_photo_path


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
