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


# IPv6 forms that lead to an IPv4 address, checked by the IPv4 rules: a NAT64 gateway, a 6to4
# relay or the host's own stack would otherwise carry a "public" IPv6 request to 10.0.0.1.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 in the last 32 bits
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the layout is the operator's
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 ::ffff:0:a.b.c.d

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and a request to it may end up at: mapped,
    compatible and translated forms, well-known NAT64, 6to4, Teredo (server and client)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(ip.packed[12:])]
    return []


def remaining_seconds(deadline: float) -> float:
    """Time left before `deadline` (time.monotonic()); TimeoutError when there is none."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the fetch deadline passed")
    return remaining


def connect_to_first(addresses: Sequence[str], port: int, deadline: float) -> socket.socket:
    """A connection to the first of `addresses` that accepts: each gets an equal share of the
    time left, so one that drops packets cannot use up the others' time. The last error when
    none accepts."""
    last_error: OSError = TimeoutError("the fetch deadline passed before connecting")
    for index, address in enumerate(addresses):
        try:
            share = remaining_seconds(deadline) / (len(addresses) - index)
            return socket.create_connection((address, port), timeout=share)
        except OSError as error:
            last_error = error
    raise last_error


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: "_DeadlineSocket") -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.owner.arm()
        return self.owner.sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self.owner.reader_closed()
        super().close()


class _DeadlineSocket:
    """A connected socket whose every send and receive may wait only until the fetch's deadline:
    a server dripping a byte at a time no longer restarts the timeout with each byte."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.open_readers = 0
        self.close_requested = False

    def arm(self) -> None:
        self.sock.settimeout(remaining_seconds(self.deadline))

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BufferedReader:
        self.open_readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        # As socket.makefile's files do: http.client closes the connection as soon as it has
        # the headers of a response that ends with it, and reads the body afterwards.
        self.close_requested = True
        if not self.open_readers:
            self.sock.close()

    def reader_closed(self) -> None:
        self.open_readers -= 1
        if self.close_requested and not self.open_readers:
            self.sock.close()

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses we vetted (the first that accepts), not to whatever DNS says a
    moment later; every read and write ends by the fetch's deadline."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], deadline: float) -> None:
        super().__init__(host, port)
        self.vetted_addresses = addresses
        self.deadline = deadline

    def connect(self) -> None:
        raw = connect_to_first(self.vetted_addresses, self.port, self.deadline)
        self.sock = _DeadlineSocket(raw, self.deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: Sequence[str], deadline: float) -> None:
        super().__init__(host, port, context=ssl.create_default_context())
        self.vetted_addresses = addresses
        self.deadline = deadline

    def connect(self) -> None:
        raw = connect_to_first(self.vetted_addresses, self.port, self.deadline)
        raw.settimeout(remaining_seconds(self.deadline))  # the handshake, as one wait
        secure = self._context.wrap_socket(raw, server_hostname=self.host)
        self.sock = _DeadlineSocket(secure, self.deadline)


class UrlFetcher:
    """GET an image over http(s) within a deadline for the whole fetch (`timeout` seconds for
    every redirect, retry and byte), with a size cap, retries of transient failures, every
    resolved address tried in turn, and no request (first or after a redirect) to a private,
    loopback, link-local or otherwise non-public address, also not one carried inside an IPv6
    address, unless its network is explicitly allowed."""

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

    def refusal(self, ip: IPAddress) -> str | None:
        """Why no request may go to `ip`, or None when it may."""
        if any(ip in network for network in self.allowed_networks):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            if ip in NAT64_LOCAL_USE:
                return "a local-use NAT64 address (its IPv4 address is the network's to say)"
            embedded = embedded_ipv4(ip)
            for ipv4 in embedded:
                if self.refusal(ipv4):
                    return f"an address leading to {ipv4}, a private or reserved address"
            if ip.ipv4_mapped is not None:
                return None  # only a notation for its IPv4 address, which passed
        if not ip.is_global:
            return "a private or reserved address"
        return None

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, in the resolver's order; any refused one refuses
        the host (its DNS may hand the refused one to the next caller)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise ImageRejected(f"cannot resolve {host} ({error})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            if reason := self.refusal(ipaddress.ip_address(address)):
                raise ImageRejected(f"{host} resolves to {address}, {reason}: refused")
        return addresses

    def fetch(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        for _hop in range(self.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ImageRejected(f"only http(s) URLs are fetched, not {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = self.vetted_addresses(parts.hostname, port)
            status, location, body = self._get_with_retries(parts, port, addresses, deadline)
            if 300 <= status < 400 and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise ImageRejected(f"HTTP {status} from {parts.hostname}")
            return body
        raise ImageRejected(f"more than {self.max_redirects} redirects")

    def _get_with_retries(
        self, parts, port: int, addresses: Sequence[str], deadline: float
    ) -> tuple[int, str, bytes]:
        for attempt in range(1, self.attempts + 1):
            try:
                status, location, body = self._get(parts, port, addresses, deadline)
            except (OSError, http.client.HTTPException) as error:
                if time.monotonic() >= deadline:
                    raise ImageRejected(
                        f"no image from {parts.hostname} within the {self.timeout:g} s fetch "
                        "deadline (OUTFITS_IMAGE_FETCH_TIMEOUT)"
                    ) from None
                if attempt == self.attempts:
                    raise ImageRejected(
                        f"fetch failed after {attempt} attempts ({error})"
                    ) from None
            else:
                if status not in TRANSIENT_STATUSES or attempt == self.attempts:
                    return status, location, body
                if time.monotonic() + self.backoff * attempt >= deadline:
                    return status, location, body  # no time left to ask again
            time.sleep(min(self.backoff * attempt, max(deadline - time.monotonic(), 0)))
        raise AssertionError("unreachable")

    def _get(
        self, parts, port: int, addresses: Sequence[str], deadline: float
    ) -> tuple[int, str, bytes]:
        pinned = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = pinned(parts.hostname, port, addresses, deadline)
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
