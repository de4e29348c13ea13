"""Where product images come from, safely: a file in the upload's folder or zip, an absolute
path under an allowed root, or an http(s) URL fetched with SSRF protection. Every image is
verified and decoded under a pixel limit, converted to RGB and stored by content hash with a
thumbnail, so an unchanged image is stored (and embedded) once."""

import hashlib
import http.client
import io
import ipaddress
import logging
import shutil
import socket
import ssl
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 40_000_000  # far above any product photo, far below a decompression bomb
MAX_IMAGE_BYTES = 20 * 1024 * 1024
THUMBNAIL_SIZE = (320, 320)
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


class ImageRejected(ValueError):
    """This image cannot be used; the message says why, for the import report."""


class ArchiveRejected(ValueError):
    """The uploaded images archive is unsafe or unreadable; nothing of it is used."""


def inside(root: Path, reference: str) -> Path:
    """`reference` resolved under `root`, refusing anything that leaves it (`..`, absolute
    paths, links pointing out)."""
    root = root.resolve()
    target = (root / reference).resolve()
    if target != root and root not in target.parents:
        raise ImageRejected(f"path leaves the image folder {root}")
    return target


@dataclass(frozen=True)
class StoredImage:
    name: str
    thumbnail_name: str
    sha256: str


def decode_image(data: bytes) -> Image.Image:
    """The picture in `data` as RGB, or ImageRejected saying why (size, corrupt, not an image)."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageRejected(
                    f"{width}×{height} pixels is over the limit of {MAX_IMAGE_PIXELS:,}"
                )
            probe.verify()  # catches truncated and corrupt files before decoding
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB")
    except ImageRejected:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as error:
        raise ImageRejected(f"not a readable image ({error})") from None


def check_image(data: bytes) -> str:
    """Decode without storing (dry runs); returns the content hash."""
    decode_image(data)
    return hashlib.sha256(data).hexdigest()


def store_image(data: bytes) -> StoredImage:
    sha256 = hashlib.sha256(data).hexdigest()
    name = f"products/{sha256[:2]}/{sha256}.jpg"
    thumbnail_name = f"products/{sha256[:2]}/{sha256}-thumb.jpg"
    if default_storage.exists(name) and default_storage.exists(thumbnail_name):
        return StoredImage(name, thumbnail_name, sha256)
    image = decode_image(data)
    for target, picture in ((name, image), (thumbnail_name, image.copy())):
        if target == thumbnail_name:
            picture.thumbnail(THUMBNAIL_SIZE)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        if not default_storage.exists(target):
            default_storage.save(target, ContentFile(buffer.getvalue()))
    return StoredImage(name, thumbnail_name, sha256)


def extract_archive(
    archive: Path,
    destination: Path,
    max_total_bytes: int | None = None,
    max_entries: int | None = None,
    max_ratio: float | None = None,
) -> Path:
    """Unpack a zip of images, refusing the whole archive before anything is written on a path
    that leaves `destination` (zip-slip) or on zip-bomb signs: more entries, more expanded bytes
    or a higher expansion ratio (whole archive and per large entry) than allowed. Bytes are
    counted again while writing, so headers that lie cannot get past the total either. The
    limits default to the OUTFITS_IMPORT_ZIP_* settings."""
    if max_total_bytes is None:
        max_total_bytes = settings.OUTFITS_IMPORT_ZIP_MAX_BYTES
    if max_entries is None:
        max_entries = settings.OUTFITS_IMPORT_ZIP_MAX_ENTRIES
    if max_ratio is None:
        max_ratio = settings.OUTFITS_IMPORT_ZIP_MAX_RATIO
    written = 0
    try:
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
            _check_archive_size(
                entries, archive.stat().st_size, max_total_bytes, max_entries, max_ratio
            )
            files = [entry for entry in entries if not entry.is_dir()]
            targets = [_extraction_target(destination, entry) for entry in files]
            for entry, target in zip(files, targets, strict=True):
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry) as source, target.open("wb") as sink:
                    while block := source.read(1 << 20):
                        written += len(block)
                        if written > max_total_bytes:
                            raise ArchiveRejected(
                                f"the archive expands past {max_total_bytes:,} bytes "
                                "(OUTFITS_IMPORT_ZIP_MAX_BYTES); the archive was not used"
                            )
                        sink.write(block)
    except ArchiveRejected:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise ArchiveRejected(f"not a readable zip file ({error})") from None
    return destination


# Archives (and entries) expanding to less than this are too small to be bombs, whatever
# their ratio: a few flat-colour pictures compress well.
BOMB_RATIO_FLOOR_BYTES = 1 << 20


def _check_archive_size(
    entries: Sequence[zipfile.ZipInfo],
    archive_bytes: int,
    max_total_bytes: int,
    max_entries: int,
    max_ratio: float,
) -> None:
    """Refuse a zip bomb from its directory alone, before anything is extracted: many small
    entries are as much a bomb as one huge one, so the count, the total and the ratio are
    checked on the whole archive."""
    if len(entries) > max_entries:
        raise ArchiveRejected(
            f"the archive holds {len(entries):,} entries, over the limit of {max_entries:,} "
            "(OUTFITS_IMPORT_ZIP_MAX_ENTRIES); the archive was not used"
        )
    total = sum(entry.file_size for entry in entries)
    if total > max_total_bytes:
        raise ArchiveRejected(
            f"the archive would expand to {total:,} bytes, over the limit of "
            f"{max_total_bytes:,} (OUTFITS_IMPORT_ZIP_MAX_BYTES); the archive was not used"
        )
    ratio = total / max(archive_bytes, 1)
    if total > BOMB_RATIO_FLOOR_BYTES and ratio > max_ratio:
        raise ArchiveRejected(
            f"the archive expands {ratio:,.0f}× ({archive_bytes:,} bytes to {total:,}), over "
            f"the limit of {max_ratio:g}× (OUTFITS_IMPORT_ZIP_MAX_RATIO): a zip bomb, not "
            "images; the archive was not used"
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > BOMB_RATIO_FLOOR_BYTES and ratio > max_ratio:
            raise ArchiveRejected(
                f"{entry.filename!r} expands {ratio:,.0f}× ({entry.file_size:,} bytes), over "
                f"the limit of {max_ratio:g}× (OUTFITS_IMPORT_ZIP_MAX_RATIO): a zip bomb, not "
                "images; the archive was not used"
            )


def _extraction_target(destination: Path, entry: zipfile.ZipInfo) -> Path:
    try:
        return inside(destination, entry.filename)
    except ImageRejected:
        raise ArchiveRejected(
            f"{entry.filename!r} would be written outside the upload folder "
            "(a zip-slip path); the archive was not used"
        ) from None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address we vetted, not to whatever DNS says a moment later."""

    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.vetted_address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.vetted_address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.vetted_address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.vetted_address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class UrlFetcher:
    """GET an image over http(s) with a timeout, a size cap, retries of transient failures,
    and no request (first or after a redirect) to a private, loopback, link-local or otherwise
    non-public address, unless its network is explicitly allowed."""

    def __init__(
        self,
        timeout: float = 10.0,
        max_bytes: int = MAX_IMAGE_BYTES,
        max_redirects: int = 3,
        attempts: int = 3,
        allowed_networks: Sequence[str] = (),
        backoff: float = 0.5,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.attempts = attempts
        self.backoff = backoff
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def vetted_address(self, host: str, port: int) -> str:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise ImageRejected(f"cannot resolve {host} ({error})") from None
        addresses = {info[4][0] for info in infos}
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if not ip.is_global and not any(ip in net for net in self.allowed_networks):
                raise ImageRejected(
                    f"{host} resolves to {address}, a private or reserved address: refused"
                )
        return sorted(addresses)[0]

    def fetch(self, url: str) -> bytes:
        for _hop in range(self.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ImageRejected(f"only http(s) URLs are fetched, not {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = self.vetted_address(parts.hostname, port)
            status, location, body = self._get_with_retries(parts, port, address)
            if 300 <= status < 400 and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise ImageRejected(f"HTTP {status} from {parts.hostname}")
            return body
        raise ImageRejected(f"more than {self.max_redirects} redirects")

    def _get_with_retries(self, parts, port: int, address: str) -> tuple[int, str, bytes]:
        for attempt in range(1, self.attempts + 1):
            try:
                status, location, body = self._get(parts, port, address)
            except (OSError, http.client.HTTPException) as error:
                if attempt == self.attempts:
                    raise ImageRejected(
                        f"fetch failed after {attempt} attempts ({error})"
                    ) from None
            else:
                if status not in TRANSIENT_STATUSES or attempt == self.attempts:
                    return status, location, body
            time.sleep(self.backoff * attempt)
        raise AssertionError("unreachable")

    def _get(self, parts, port: int, address: str) -> tuple[int, str, bytes]:
        pinned = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = pinned(parts.hostname, port, address, self.timeout)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        try:
            connection.request(
                "GET", path, headers={"User-Agent": "outfit-matcher-import/1", "Accept": "image/*"}
            )
            response = connection.getresponse()
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > self.max_bytes:
                raise ImageRejected(f"{declared:,} bytes is over the limit of {self.max_bytes:,}")
            body = response.read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                raise ImageRejected(f"more than {self.max_bytes:,} bytes: refused")
            return response.status, response.headers.get("Location", ""), body
        finally:
            connection.close()


@dataclass
class ImageSources:
    """Resolves the `image` cell of a row to bytes."""

    folder: Path | None
    allowed_roots: Sequence[Path]
    fetcher: UrlFetcher

    def read(self, reference: str) -> bytes:
        if reference.lower().startswith(("http://", "https://")):
            return self.fetcher.fetch(reference)
        if "://" in reference:
            raise ImageRejected("only http(s) URLs and file paths are accepted")
        path = Path(reference)
        if path.is_absolute():
            resolved = path.resolve()
            if not any(
                resolved == root or root in resolved.parents
                for root in (r.resolve() for r in self.allowed_roots)
            ):
                raise ImageRejected(
                    "absolute paths must lie under an allowed import root "
                    f"(OUTFITS_IMPORT_ROOTS: {', '.join(map(str, self.allowed_roots)) or 'none'})"
                )
        elif self.folder is None:
            raise ImageRejected("a relative path needs an images folder or zip with the upload")
        else:
            resolved = inside(self.folder, reference)
        if not resolved.is_file():
            raise ImageRejected("file not found")
        if resolved.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageRejected(f"file is over the limit of {MAX_IMAGE_BYTES:,} bytes")
        return resolved.read_bytes()
