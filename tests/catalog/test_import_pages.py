"""The three doors to an import (admin page, REST endpoint, command) lead to the same job."""

import base64

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from catalog.models import ImportJob, Product

CSV = b"sku,title,category,price\nA1,Shirt,Tops,10\nB1,Bad,Tops,=HYPERLINK(1)\n"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("merch", "m@example.com", "secret-pw")


def upload(name: str = "catalog.csv", content: bytes = CSV) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_admin_index_links_to_the_upload_page(client, staff):
    client.force_login(staff)
    html = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:catalog_importjob_upload") in html


def test_admin_upload_dry_run_report_then_apply(client, staff, django_capture_on_commit_callbacks):
    client.force_login(staff)
    assert client.get(reverse("admin:catalog_importjob_upload")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:catalog_importjob_upload"),
            {
                "kind": "catalog",
                "csv_file": upload(),
                "dry_run": "on",
                "create_categories": "on",
                "column_mapping": "",
            },
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:catalog_importjob_report", args=[job.pk])
    page = client.get(response.url).content.decode()
    assert "Would be created" in page and "Dry run" in page and "Apply this import for real" in page
    assert "=HYPERLINK(1)" in page and "rejections.csv" in page
    assert Product.objects.count() == 0
    report = client.get(reverse("admin:catalog_importjob_rejections", args=[job.pk]))
    assert b"'=HYPERLINK(1)" in b"".join(report.streaming_content)
    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(reverse("admin:catalog_importjob_apply", args=[job.pk]))
    real = ImportJob.objects.latest("pk")
    assert applied.url == reverse("admin:catalog_importjob_report", args=[real.pk])
    assert not real.dry_run and real.created == 1
    assert list(Product.objects.values_list("sku", flat=True)) == ["A1"]


def test_admin_upload_form_explains_bad_options(client, staff, settings, tmp_path):
    settings.OUTFITS_IMPORT_ROOTS = [tmp_path / "allowed"]
    client.force_login(staff)
    response = client.post(
        reverse("admin:catalog_importjob_upload"),
        {
            "kind": "catalog",
            "csv_file": upload(),
            "column_mapping": "sku",
            "images_folder": "/etc",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "is not of the form field=column" in html and "not under an allowed import root" in html
    assert ImportJob.objects.count() == 0


def test_a_running_job_page_refreshes_itself_and_shows_progress(client, staff):
    client.force_login(staff)
    job = ImportJob.objects.create(
        original_name="big.csv",
        source="imports/x.csv",
        status="running",
        lines_total=1000,
        lines_done=250,
    )
    html = client.get(reverse("admin:catalog_importjob_report", args=[job.pk])).content.decode()
    assert 'http-equiv="refresh"' in html and 'value="25"' in html and "250 of 1,000" in html


def test_rest_upload_needs_staff_credentials(client, db, storefront):
    response = client.post("/api/v1/imports/", {"kind": "catalog", "csv_file": upload()})
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    # A storefront's key is told it cannot import, not that it sent no credentials.
    response = client.post(
        "/api/v1/imports/",
        {"kind": "catalog", "csv_file": upload()},
        HTTP_AUTHORIZATION=f"Api-Key {storefront.raw_key}",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "storefront_key_not_allowed"
    assert "for staff" in response.json()["error"]["message"]
    get_user_model().objects.create_user("shopper", password="pw")
    basic = "Basic " + base64.b64encode(b"shopper:pw").decode()
    response = client.post(
        "/api/v1/imports/", {"kind": "catalog", "csv_file": upload()}, HTTP_AUTHORIZATION=basic
    )
    assert response.status_code == 403
    assert ImportJob.objects.count() == 0


def test_rest_upload_runs_the_same_job_and_reports(
    client, staff, django_capture_on_commit_callbacks
):
    basic = "Basic " + base64.b64encode(b"merch:secret-pw").decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/imports/", {"kind": "catalog", "csv_file": upload()}, HTTP_AUTHORIZATION=basic
        )
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["url"]
    status = client.get(body["url"], HTTP_AUTHORIZATION=basic).json()
    assert (status["status"], status["created"], status["rejected"]) == ("succeeded", 1, 1)
    report = client.get(status["rejections_url"], HTTP_AUTHORIZATION=basic)
    assert b"price" in b"".join(report.streaming_content)


def test_rest_upload_rejects_bad_fields_with_400(client, staff):
    basic = "Basic " + base64.b64encode(b"merch:secret-pw").decode()
    response = client.post(
        "/api/v1/imports/", {"kind": "shoes", "column_mapping": "x"}, HTTP_AUTHORIZATION=basic
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_parameters"
    assert {"kind", "csv_file", "column_mapping"} <= error["details"].keys()
    assert "csv_file: This field is required." in error["message"]


def test_command_creates_the_same_job(db, tmp_path, capsys):
    path = tmp_path / "catalog.csv"
    path.write_bytes(CSV)
    call_command("import_catalog", str(path))
    job = ImportJob.objects.get()
    assert (job.kind, job.created, job.rejected, job.original_name) == (
        "catalog",
        1,
        1,
        "catalog.csv",
    )
    out, err = capsys.readouterr()
    assert "1 created" in out and "rejected line 3: price='=HYPERLINK(1)'" in err
