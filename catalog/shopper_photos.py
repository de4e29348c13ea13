"""Shoppers' photos (the /match/ page and POST /api/v1/matches/by-image/): one size limit,
OUTFITS_PHOTO_MAX_BYTES, enforced before the request's body is read; and the photos kept with
the shopper's consent, stripped of metadata, in a folder only staff are shown."""

import base64
import hashlib
import io
import os
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from PIL import Image, ImageOps

from .image_sources import ImageRejected, decode_image

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


# --- Photos kept with the shopper's consent ---

KEPT_PHOTO_NAME = re.compile(r"^[0-9a-f]{64}\.jpg$")


def kept_photos_folder() -> Path:
    """Where kept photos live: under the var directory, never under MEDIA_ROOT (which is
    served to anyone), so only the staff view below hands them out."""
    folder = (Path(settings.VAR_DIR) / "private" / "photos").resolve()
    media = Path(settings.MEDIA_ROOT).resolve()
    if folder == media or media in folder.parents:
        raise ImproperlyConfigured(
            f"kept shopper photos would be served publicly: {folder} is under MEDIA_ROOT {media}"
        )
    return folder


# The photo shown back beside its matches: enough to recognise it, small enough to send again.
SHOWN_PHOTO_SIDE = 480


def photo_to_show(image: Image.Image) -> str:
    """The shopper's photo as the page shows it back, and sends it again when the shopper
    corrects its category: at most SHOWN_PHOTO_SIDE pixels a side, pixels only (no metadata),
    a base64 JPEG. Nothing is stored."""
    shown = Image.new("RGB", image.size)
    shown.paste(image)
    shown.thumbnail((SHOWN_PHOTO_SIDE, SHOWN_PHOTO_SIDE))
    encoded = io.BytesIO()
    shown.save(encoded, format="JPEG", quality=85)
    return base64.b64encode(encoded.getvalue()).decode("ascii")


def keep_photo(data: bytes) -> str:
    """Store a shopper's photo (they ticked the box) as a JPEG re-encoded from its pixels alone,
    turned upright first: no EXIF (GPS position, camera serial, time), no other metadata.
    Named by the upload's hash, so the same photo is kept once; returns the name."""
    upright = ImageOps.exif_transpose(decode_image(data))
    pixels_only = Image.new("RGB", upright.size)  # a fresh image: nothing of the file's info
    pixels_only.paste(upright)
    encoded = io.BytesIO()
    pixels_only.save(encoded, format="JPEG", quality=90)
    folder = kept_photos_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{hashlib.sha256(data).hexdigest()}.jpg"
    if not (folder / name).exists():
        draft = folder / f".{name}.{os.getpid()}.part"
        draft.write_bytes(encoded.getvalue())
        draft.replace(folder / name)  # whole or not at all
    return name


def kept_photo_names() -> list[str]:
    """The kept photos, newest first."""
    folder = kept_photos_folder()
    if not folder.is_dir():
        return []
    photos = [path for path in folder.iterdir() if KEPT_PHOTO_NAME.match(path.name)]
    return [path.name for path in sorted(photos, key=lambda p: p.stat().st_mtime, reverse=True)]


def kept_photo_path(name: str) -> Path | None:
    """The file of a kept photo, or None for a name that is not one (nothing else is served)."""
    if not KEPT_PHOTO_NAME.match(name):
        return None
    path = kept_photos_folder() / name
    return path if path.is_file() else None


def move_public_kept_photos() -> tuple[int, list[str]]:
    """Photos kept before they were private (raw files under MEDIA_ROOT/shopper-photos/, EXIF
    and all): each is kept again the private way, then deleted. Returns how many moved and the
    files that are not readable images, left where they are for staff to look at."""
    public = Path(settings.MEDIA_ROOT) / "shopper-photos"
    moved, unreadable = 0, []
    for path in sorted(public.glob("*")) if public.is_dir() else []:
        try:
            keep_photo(path.read_bytes())
        except ImageRejected:
            unreadable.append(str(path))
            continue
        path.unlink()
        moved += 1
    if public.is_dir() and not any(public.iterdir()):
        public.rmdir()
    return moved, unreadable
