"""Shoppers' photos (the /match/ page and POST /api/v1/matches/by-image/): one size limit,
OUTFITS_PHOTO_MAX_BYTES, enforced before the request's body is read."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

# The rest of a photo form (its other fields, the multipart boundaries) on top of the photo.
FORM_FIELDS_ALLOWANCE = 64 * 1024


class PhotoRefused(ValueError):
    """The upload is refused before (or while) its body is read; the message says why."""

    status = 400
    code = "photo_refused"


class PhotoTooLarge(PhotoRefused):
    status = 413
    code = "photo_too_large"


class PhotoLengthRequired(PhotoRefused):
    status = 411
    code = "length_required"


def megabytes(size: int) -> str:
    """`size` bytes for people: 10 MB, 200.5 MB, 2 kB."""
    if size < 1 << 20:
        return f"{size / 1024:.0f} kB"
    return f"{size / (1 << 20):.1f}".removesuffix(".0") + " MB"


def photo_limit() -> int:
    return settings.OUTFITS_PHOTO_MAX_BYTES


def too_large(size: int | None = None) -> PhotoTooLarge:
    limit = megabytes(photo_limit())
    if size is None:
        return PhotoTooLarge(f"The photo is over the limit of {limit}.")
    return PhotoTooLarge(f"That is {megabytes(size)}; a photo may be up to {limit}.")


class PhotoSizeLimit(FileUploadHandler):
    """Counts the bytes of uploaded files as the parser reads them and stops the upload at the
    limit, whatever the request's headers said: nothing over it is buffered or written."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise too_large()
        return raw_data  # on to the usual handlers (memory, then a temporary file)

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file


def limit_photo_upload(request: HttpRequest) -> None:
    """Call before anything reads the body of a request that brings a photo: refuses at once
    (PhotoTooLarge) a declared length over the limit, refuses a body of unknown length
    (PhotoLengthRequired: Django would read it as empty, and its size cannot be judged before
    reading), and makes the body's parser stop at the limit."""
    if request.META.get("HTTP_TRANSFER_ENCODING"):
        raise PhotoLengthRequired(
            "Send the photo with a Content-Length header (not chunked); "
            f"a photo may be up to {megabytes(photo_limit())}."
        )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # Django reads such a body as empty
    if declared > photo_limit() + FORM_FIELDS_ALLOWANCE:
        raise too_large(declared)
    request.upload_handlers.insert(0, PhotoSizeLimit(request, photo_limit()))
