"""Image sources are safe: no SSRF, no zip-slip, no zip bomb, no decompression bomb."""

import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from catalog.image_sources import (
    ArchiveRejected,
    ImageRejected,
    UrlFetcher,
    connect_to_first,
    extract_archive,
    inside,
)
from catalog.models import Product

PNG = io.BytesIO()
Image.new("RGB", (8, 8), "teal").save(PNG, format="PNG")
PNG_BYTES = PNG.getvalue()


class ImageServer(BaseHTTPRequestHandler):
    """/ok: a PNG · /flaky: 503 twice, then the PNG · /down: always 503 · /to-metadata:
    redirect to the cloud metadata address · /to-ok: redirect to /ok · /big: too many bytes."""

    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        ImageServer.hits[self.path] = ImageServer.hits.get(self.path, 0) + 1
        if self.path == "/ok" or (self.path == "/flaky" and ImageServer.hits[self.path] > 2):
            self.reply(200, PNG_BYTES)
        elif self.path in {"/flaky", "/down"}:
            self.reply(503, b"busy")
        elif self.path == "/to-metadata":
            self.reply(302, b"", location="http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-ok":
            self.reply(301, b"", location="/ok")
        elif self.path == "/big":
            self.reply(200, b"x" * 5000)
        else:
            self.reply(404, b"")

    def reply(self, status: int, body: bytes, location: str = "") -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    ImageServer.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImageServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def trusting_loopback(**options) -> UrlFetcher:
    """A fetcher for a store whose image server is on an allowed in-house network."""
    return UrlFetcher(allowed_networks=["127.0.0.1/32"], backoff=0.01, **options)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/image.jpg",
        "http://localhost:8000/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.jpg",
        "http://[::1]/a.jpg",
        "http://0.0.0.0/a.jpg",
    ],
)
def test_private_loopback_and_link_local_addresses_are_never_fetched(url, image_server):
    with pytest.raises(ImageRejected, match="private or reserved address"):
        UrlFetcher().fetch(url)
    with pytest.raises(ImageRejected, match="private or reserved address"):
        UrlFetcher().fetch(image_server + "/ok")  # a real server there, still refused
    assert ImageServer.hits == {}


def test_a_redirect_to_a_private_address_is_not_followed(image_server):
    with pytest.raises(ImageRejected, match="169.254.169.254.*refused"):
        trusting_loopback().fetch(image_server + "/to-metadata")
    assert trusting_loopback().fetch(image_server + "/to-ok") == PNG_BYTES


def test_transient_failures_are_retried_and_size_and_scheme_are_capped(image_server):
    assert trusting_loopback().fetch(image_server + "/flaky") == PNG_BYTES
    assert ImageServer.hits["/flaky"] == 3
    with pytest.raises(ImageRejected, match="HTTP 503"):
        trusting_loopback(attempts=2).fetch(image_server + "/down")
    assert ImageServer.hits["/down"] == 2
    with pytest.raises(ImageRejected, match="over the limit"):
        trusting_loopback(max_bytes=1000).fetch(image_server + "/big")
    with pytest.raises(ImageRejected, match="only http"):
        UrlFetcher().fetch("file:///etc/passwd")


def test_a_url_that_does_not_answer_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        for scheme in ("http", "https"):  # https: a TLS handshake that never comes
            with pytest.raises(ImageRejected, match="within the 0.3 s fetch deadline"):
                trusting_loopback(timeout=0.3, attempts=1).fetch(
                    f"{scheme}://127.0.0.1:{silent.getsockname()[1]}/slow"
                )
    finally:
        silent.close()


class DrippingServer(BaseHTTPRequestHandler):
    """Sends a byte every 0.1 s for 5 s, never long enough silent for a per-read timeout:
    /body drips the body of a 200, /headers the response's headers."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = PNG_BYTES[:50]
        head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n"
        if self.path == "/body":
            self.wfile.write(head.encode() + b"\r\n")
            slow = body
        else:
            slow = (head + "X-Padding: " + "x" * (50 - len(head) - 14) + "\r\n\r\n").encode()
        try:
            for index in range(len(slow)):
                self.wfile.write(slow[index : index + 1])
                time.sleep(0.1)
            if self.path != "/body":
                self.wfile.write(body)
        except OSError:
            pass  # the fetcher gave up: what the test wants

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("dripped", ["/body", "/headers"])
def test_a_dripping_server_cannot_hold_a_fetch_past_its_deadline(dripped):
    server = ThreadingHTTPServer(("127.0.0.1", 0), DrippingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(ImageRejected) as late:
            trusting_loopback(timeout=1.0).fetch(
                f"http://127.0.0.1:{server.server_address[1]}{dripped}"
            )
    finally:
        server.shutdown()
    elapsed = time.monotonic() - started
    assert str(late.value) == (
        "no image from 127.0.0.1 within the 1 s fetch deadline (OUTFITS_IMAGE_FETCH_TIMEOUT)"
    )
    assert 0.9 < elapsed < 2.0  # the whole fetch: no per-read restart, no retry after it


def test_every_resolved_address_is_tried_until_one_accepts():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(1)
    port = listening.getsockname()[1]
    deadline = time.monotonic() + 5
    try:
        # 127.0.0.2 is loopback too, but nothing listens there: refused, then the next
        with connect_to_first(["127.0.0.2", "127.0.0.1"], port, deadline) as connected:
            assert connected.getpeername() == ("127.0.0.1", port)
        with pytest.raises(ConnectionRefusedError):
            connect_to_first(["127.0.0.2", "127.0.0.3"], port, deadline)
        with pytest.raises(TimeoutError):
            connect_to_first(["127.0.0.1"], port, time.monotonic() - 1)
    finally:
        listening.close()


@pytest.mark.parametrize(
    ("address", "leads_to"),
    [
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64, well-known prefix
        ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
        ("::7f00:1", "127.0.0.1"),  # IPv4-compatible
        ("::ffff:0:a00:1", "10.0.0.1"),  # IPv4-translated
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, its client
    ],
)
def test_ipv6_addresses_carrying_a_private_ipv4_address_are_refused(address, leads_to):
    with pytest.raises(ImageRejected, match="private or reserved address: refused") as refused:
        UrlFetcher(attempts=1, backoff=0.01).fetch(f"http://[{address}]/image.jpg")
    assert f"an address leading to {leads_to}," in str(refused.value)


def test_ipv6_addresses_carrying_a_public_ipv4_address_pass_and_local_nat64_is_refused():
    fetcher = UrlFetcher()
    assert fetcher.vetted_addresses("64:ff9b::808:808", 80) == ["64:ff9b::808:808"]
    assert fetcher.vetted_addresses("::ffff:8.8.8.8", 80) == ["::ffff:8.8.8.8"]
    with pytest.raises(ImageRejected, match="local-use NAT64"):
        fetcher.vetted_addresses("64:ff9b:1::a9fe:a9fe", 80)
    allowed = UrlFetcher(allowed_networks=["127.0.0.1/32"])
    assert allowed.vetted_addresses("::ffff:127.0.0.1", 80) == ["::ffff:127.0.0.1"]
    with pytest.raises(ImageRejected, match="leading to 127.0.0.2"):
        allowed.vetted_addresses("64:ff9b::7f00:2", 80)


def test_url_images_import_and_an_unchanged_url_is_not_fetched_again(
    run_import, image_server, settings
):
    settings.OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    body = f"sku,category,image\nA,Tops,{image_server}/ok\nB,Tops,http://169.254.169.254/x\n"
    job = run_import(body)
    assert job.created == 1 and job.rejected == 1
    assert Product.objects.get(sku="A").image_sha256
    run_import(body)
    assert ImageServer.hits["/ok"] == 1


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def test_zip_slip_paths_refuse_the_whole_archive(tmp_path):
    archive = tmp_path / "images.zip"
    archive.write_bytes(zip_of({"ok.png": PNG_BYTES, "../../evil.png": PNG_BYTES}))
    with pytest.raises(ArchiveRejected, match="zip-slip"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "out").exists()
    with pytest.raises(ImageRejected):
        inside(tmp_path / "out", "/etc/passwd")


def test_zip_bombs_are_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_of({"zeros.png": bytes(30 << 20)}))  # 30 MB of zeros, ~30 kB zipped
    with pytest.raises(ArchiveRejected, match="zip bomb"):
        extract_archive(archive, tmp_path / "out")
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"plain text")
    with pytest.raises(ArchiveRejected, match="not a readable zip"):
        extract_archive(not_zip, tmp_path / "out")


def test_a_zip_of_many_small_entries_is_a_bomb_refused_before_anything_is_written(tmp_path):
    """Each entry is small and below the per-entry ratio check; the archive as a whole expands
    about 400 times (100 MB from 250 kB): the default settings refuse it unopened."""
    archive = tmp_path / "many-small.zip"
    archive.write_bytes(zip_of({f"{i}.png": bytes(100_000) for i in range(1000)}))
    with pytest.raises(ArchiveRejected) as refused:
        extract_archive(archive, tmp_path / "out")
    message = str(refused.value)
    assert "zip bomb" in message and "100,000,000" in message
    assert f"{archive.stat().st_size:,} bytes" in message
    assert "over the limit of 100× (OUTFITS_IMPORT_ZIP_MAX_RATIO)" in message
    assert not (tmp_path / "out").exists()


def test_entry_count_and_expanded_size_are_bounded_by_settings(tmp_path, settings):
    archive = tmp_path / "images.zip"
    entries = {f"{i}.png": PNG_BYTES for i in range(11)}
    archive.write_bytes(zip_of(entries))
    expanded = len(PNG_BYTES) * 11

    settings.OUTFITS_IMPORT_ZIP_MAX_ENTRIES = 10
    with pytest.raises(
        ArchiveRejected,
        match=r"holds 11 entries, over the limit of 10 \(OUTFITS_IMPORT_ZIP_MAX_ENTRIES\)",
    ):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    settings.OUTFITS_IMPORT_ZIP_MAX_ENTRIES = 11
    settings.OUTFITS_IMPORT_ZIP_MAX_BYTES = expanded - 1
    with pytest.raises(
        ArchiveRejected,
        match=f"would expand to {expanded:,} bytes, over the limit of {expanded - 1:,} "
        r"\(OUTFITS_IMPORT_ZIP_MAX_BYTES\)",
    ):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    settings.OUTFITS_IMPORT_ZIP_MAX_BYTES = expanded
    folder = extract_archive(archive, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == sorted(entries)


def test_an_uploaded_zip_provides_the_images_and_an_unsafe_one_fails_the_job(run_import):
    from django.core.files.base import ContentFile

    good = ContentFile(zip_of({"pics/a.png": PNG_BYTES}), name="images.zip")
    job = run_import("sku,category,image\nA,Tops,pics/a.png\n", images_archive=good)
    assert job.status == "succeeded" and Product.objects.get().image_sha256
    evil = ContentFile(zip_of({"../x.png": PNG_BYTES}), name="images.zip")
    failed = run_import("sku,category,image\nB,Tops,x.png\n", images_archive=evil)
    assert failed.status == "failed" and "zip-slip" in failed.message
    bomb = ContentFile(zip_of({f"{i}.png": bytes(100_000) for i in range(100)}), name="b.zip")
    exploded = run_import("sku,category,image\nC,Tops,1.png\n", images_archive=bomb)
    assert exploded.status == "failed" and "OUTFITS_IMPORT_ZIP_MAX_RATIO" in exploded.message
    assert not Product.objects.filter(sku="B").exists()


def test_relative_paths_without_an_images_folder_are_explained(run_import):
    job = run_import("sku,category,image\nA,Tops,a.png\n")
    assert "needs an images folder or zip" in job.rejections.get().reason


def test_inside_accepts_nested_paths(tmp_path):
    assert inside(tmp_path, "a/b.png") == (tmp_path / "a" / "b.png").resolve()
    assert isinstance(inside(tmp_path, "x.png"), Path)
