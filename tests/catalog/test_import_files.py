"""Uploaded import files are private: stored outside MEDIA_ROOT under random names, served by
the admin to staff who may view import jobs, and an images zip is gone once its job ends."""

import importlib
import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import re_path, reverse
from django.views.static import serve
from PIL import Image

from catalog.import_jobs import create_import_job, rerun_for_real, run_import_job
from catalog.models import ImportJob, Product
from outfits import urls as site_urls

CSV = b"sku,title,category,price,image\nA1,Shirt,Tops,10,pics/a.png\nB1,Bad,Tops,x,\n"


def media(request, path):
    """The site's media route (django.views.static.serve of MEDIA_ROOT), reading this test's
    MEDIA_ROOT at request time: the site binds the folder when its URLconf is imported."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [re_path(r"^media/(?P<path>.*)$", media), *site_urls.urlpatterns]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "navy").save(buffer, "PNG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in (entries or {"pics/a.png": png()}).items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


def staff_user(name: str, *codenames: str):
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def merchandiser(client, db):
    user = staff_user("merch", "add_importjob", "view_importjob")
    client.force_login(user)
    return user


def upload_through_admin(client, capture, csv: bytes = CSV, dry_run: bool = False, **fields):
    data = {
        "kind": "catalog",
        "csv_file": SimpleUploadedFile("spring-catalog.csv", csv, content_type="text/csv"),
        "images_zip": SimpleUploadedFile("spring-pictures.zip", zip_bytes()),
        "create_categories": "on",
        **fields,
    }
    if dry_run:
        data["dry_run"] = "on"
    with capture(execute=True):  # the job runs in-process once the upload commits
        response = client.post(reverse("admin:catalog_importjob_upload"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.latest("pk")


@pytest.mark.urls(__name__)
def test_uploaded_files_are_neither_in_media_nor_served_from_it(
    client, merchandiser, django_capture_on_commit_callbacks
):
    job = upload_through_admin(client, django_capture_on_commit_callbacks, dry_run=True)
    assert job.status == "succeeded", job.message
    media_files = files_under(settings.MEDIA_ROOT)
    assert not [path for path in media_files if path.suffix in {".csv", ".zip"}], media_files
    stored = files_under(settings.OUTFITS_IMPORT_FILES_DIR)
    assert {path.suffix for path in stored} == {".csv", ".zip"}
    assert not any("spring" in str(path) for path in stored)  # not named after the upload
    assert job.original_name == "spring-catalog.csv"
    assert job.images_archive_name == "spring-pictures.zip"
    client.logout()
    for url in [
        f"/media/imports/{job.created_at:%Y/%m}/spring-catalog.csv",
        f"/media/imports/{job.created_at:%Y/%m}/spring-pictures.zip",
        f"/media/{job.source.name}",
        f"/media/imports/{job.source.name}",
    ]:
        assert client.get(url).status_code == 404, url


def test_the_admin_serves_a_jobs_files_to_staff_who_may_view_jobs_only(
    client, merchandiser, django_capture_on_commit_callbacks
):
    job = upload_through_admin(client, django_capture_on_commit_callbacks, dry_run=True)
    csv_url = reverse("admin:catalog_importjob_file", args=[job.pk, "csv"])
    zip_url = reverse("admin:catalog_importjob_file", args=[job.pk, "images"])
    report = client.get(reverse("admin:catalog_importjob_report", args=[job.pk])).content.decode()
    assert csv_url in report and zip_url in report
    response = client.get(csv_url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == CSV
    assert response["Content-Disposition"] == 'attachment; filename="spring-catalog.csv"'
    assert client.get(zip_url)["Content-Type"] == "application/zip"
    client.force_login(staff_user("nobody"))
    assert client.get(csv_url).status_code == 403 and client.get(zip_url).status_code == 403
    client.force_login(staff_user("importer", "add_importjob"))
    assert client.get(csv_url).status_code == 403
    client.logout()
    assert client.get(csv_url).status_code == 302  # to the admin's login page


def test_the_zip_is_deleted_when_the_job_ends_and_the_report_still_works(
    client, merchandiser, django_capture_on_commit_callbacks
):
    job = upload_through_admin(client, django_capture_on_commit_callbacks)
    assert (job.status, job.created, job.rejected) == ("succeeded", 1, 1), job.message
    assert Product.objects.get(sku="A1").image_sha256  # the zip provided the picture
    assert not job.images_archive
    stored = files_under(settings.OUTFITS_IMPORT_FILES_DIR)
    assert [path.suffix for path in stored] == [".csv"]  # no zip, no extracted pictures
    page = client.get(reverse("admin:catalog_importjob_report", args=[job.pk])).content.decode()
    assert "spring-pictures.zip (deleted when the job ended)" in page
    rejections = client.get(reverse("admin:catalog_importjob_rejections", args=[job.pk]))
    assert b"3,price,x," in b"".join(rejections.streaming_content)
    csv = client.get(reverse("admin:catalog_importjob_file", args=[job.pk, "csv"]))
    assert b"".join(csv.streaming_content) == CSV
    gone = client.get(reverse("admin:catalog_importjob_file", args=[job.pk, "images"]))
    assert gone.status_code == 404


def test_a_dry_run_keeps_its_zip_for_apply_and_the_applying_job_deletes_it(
    client, merchandiser, django_capture_on_commit_callbacks
):
    dry = upload_through_admin(client, django_capture_on_commit_callbacks, dry_run=True)
    assert dry.status == "succeeded" and dry.images_archive
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:catalog_importjob_apply", args=[dry.pk]))
    real = ImportJob.objects.latest("pk")
    assert real.status == "succeeded" and real.created == 1
    assert Product.objects.get(sku="A1").image_sha256
    assert not real.images_archive and not ImportJob.objects.get(pk=dry.pk).images_archive
    assert [path.suffix for path in files_under(settings.OUTFITS_IMPORT_FILES_DIR)] == [".csv"]
    again = client.post(reverse("admin:catalog_importjob_apply", args=[dry.pk]), follow=True)
    assert "is no longer stored" in again.content.decode()
    assert ImportJob.objects.count() == 2


def test_an_interrupted_job_keeps_its_zip_until_it_resumes_and_ends(db, settings):
    settings.OUTFITS_IMPORT_CHUNK_ROWS = 1
    body = "sku,category,image\nA,Tops,pics/a.png\nB,Tops,pics/a.png\n"
    job = create_import_job(
        "catalog",
        ContentFile(body.encode()),
        "c.csv",
        images_archive=ContentFile(zip_bytes(), name="p.zip"),
    )
    # As if its worker had died after line 2: the job is still running, its files kept.
    ImportJob.objects.filter(pk=job.pk).update(status="running", resume_after_line=2)
    assert Path(job.images_archive.path).is_file()
    resumed = run_import_job(job.pk)
    assert resumed.status == "succeeded" and Product.objects.get(sku="B").image_sha256
    assert not resumed.images_archive
    assert [path.suffix for path in files_under(settings.OUTFITS_IMPORT_FILES_DIR)] == [".csv"]


@pytest.mark.parametrize(
    ("csv", "archive", "message"),
    [
        (b"title\nShirt\n", zip_bytes(), "sku"),  # a whole-file problem
        (CSV, zip_bytes({"../evil.png": png()}), "zip-slip"),  # an unsafe zip
    ],
)
def test_a_refused_file_leaves_nothing_behind(run_import, csv, archive, message):
    job = run_import(csv, images_archive=ContentFile(archive, name="p.zip"))
    assert job.status == "failed" and message in job.message
    assert files_under(settings.OUTFITS_IMPORT_FILES_DIR) == []
    assert files_under(settings.MEDIA_ROOT) == []
    assert not job.source and not job.images_archive


def test_a_refused_upload_stores_nothing(client, merchandiser):
    response = client.post(
        "/api/v1/imports/",
        {
            "kind": "outfits",
            "csv_file": SimpleUploadedFile("o.csv", b"outfit_id,sku\n1,A\n"),
            "images_zip": SimpleUploadedFile("p.zip", zip_bytes()),
            "column_mapping": "title=name",
        },
    )
    assert response.status_code == 400
    assert ImportJob.objects.count() == 0
    assert files_under(settings.OUTFITS_IMPORT_FILES_DIR) == []
    assert files_under(settings.MEDIA_ROOT) == []


def test_deleting_jobs_deletes_their_files_once_no_job_names_them(
    db, django_capture_on_commit_callbacks
):
    dry = create_import_job(
        "catalog", ContentFile(b"sku,category\nA,Tops\n"), "c.csv", dry_run=True
    )
    dry = run_import_job(dry.pk)
    real = run_import_job(rerun_for_real(dry).pk)
    csv = Path(real.source.path)
    with django_capture_on_commit_callbacks(execute=True):
        dry.delete()
    assert csv.is_file()  # the applied job still names it
    with django_capture_on_commit_callbacks(execute=True):
        ImportJob.objects.filter(pk=real.pk).delete()
    assert not csv.exists()


def test_the_private_store_refuses_a_folder_in_media(db, settings):
    settings.OUTFITS_IMPORT_FILES_DIR = Path(settings.MEDIA_ROOT) / "imports"
    with pytest.raises(ImproperlyConfigured, match="lies in MEDIA_ROOT"):
        create_import_job("catalog", ContentFile(b"sku,category\nA,Tops\n"), "c.csv")
    assert files_under(settings.MEDIA_ROOT) == []


def test_the_migration_moves_older_jobs_files_out_of_media(db, settings):
    from django.apps import apps

    migration = importlib.import_module("catalog.migrations.0003_private_import_files")
    old_csv = Path(settings.MEDIA_ROOT) / "imports" / "2025" / "01" / "catalog.csv"
    old_csv.parent.mkdir(parents=True)
    old_csv.write_bytes(b"sku,category\nA,Tops\n")
    leftover = Path(settings.MEDIA_ROOT) / "imports" / "job-7-images" / "a.png"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(png())
    job = ImportJob.objects.create(
        original_name="catalog.csv", source="imports/2025/01/catalog.csv"
    )
    migration.move_files_out_of_media(apps, None)
    assert files_under(settings.MEDIA_ROOT) == []
    assert not (Path(settings.MEDIA_ROOT) / "imports").exists()
    with job.source.open("rb") as moved:
        assert moved.read() == b"sku,category\nA,Tops\n"
    assert Path(job.source.path).is_relative_to(settings.OUTFITS_IMPORT_FILES_DIR)
