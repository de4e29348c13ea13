"""Imports need the admin's model permissions, not staff status alone: at the REST endpoint
and on every custom admin page of import jobs."""

import base64

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Category, ImportJob, Product

PASSWORD = "staff-pw"
# What the finding's staff user sent: a product renamed at 0.01, and "Full catalog".
HOSTILE_CSV = b"sku,title,category,price\nA1,Renamed,Tops,0.01\n"


def staff_user(name: str, *codenames: str):
    user = get_user_model().objects.create_user(name, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def basic(user) -> str:
    return "Basic " + base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()


def upload(content: bytes = HOSTILE_CSV) -> SimpleUploadedFile:
    return SimpleUploadedFile("catalog.csv", content, content_type="text/csv")


@pytest.fixture
def shop(db):
    tops = Category.objects.create(name="Tops")
    Product.objects.create(sku="A1", title="Navy shirt", category=tops, price="39.90")
    Product.objects.create(sku="B1", title="White shirt", category=tops, price="29.90")


@pytest.fixture
def finished_job(db) -> ImportJob:
    job = ImportJob.objects.create(
        original_name="catalog.csv", source="2026/01/x.csv", status="succeeded", rejected=1
    )
    job.rejections.create(line=2, column="price", value="x", reason="not a number")
    return job


def assert_forbidden(response, needed: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied" and needed in error["message"]


def test_rest_import_by_staff_without_permissions_is_refused_and_changes_nothing(
    client, shop, django_capture_on_commit_callbacks
):
    nobody = staff_user("nobody")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/imports/",
            {"kind": "catalog", "csv_file": upload(), "deactivate_missing": "true"},
            HTTP_AUTHORIZATION=basic(nobody),
        )
    assert_forbidden(response, "catalog.add_importjob")
    assert ImportJob.objects.count() == 0
    assert dict(Product.objects.values_list("sku", "title")) == {
        "A1": "Navy shirt",
        "B1": "White shirt",
    }
    assert Product.objects.filter(active=True).count() == 2


def test_rest_job_status_and_rejections_need_the_view_permission(client, finished_job):
    for user in [staff_user("nobody"), staff_user("importer", "add_importjob")]:
        for url in [
            f"/api/v1/imports/{finished_job.pk}/",
            f"/api/v1/imports/{finished_job.pk}/rejections.csv",
        ]:
            assert_forbidden(
                client.get(url, HTTP_AUTHORIZATION=basic(user)), "catalog.view_importjob"
            )
    viewer = staff_user("viewer", "view_importjob")
    status = client.get(f"/api/v1/imports/{finished_job.pk}/", HTTP_AUTHORIZATION=basic(viewer))
    assert status.status_code == 200 and status.json()["rejected"] == 1
    report = client.get(status.json()["rejections_url"], HTTP_AUTHORIZATION=basic(viewer))
    assert b"not a number" in b"".join(report.streaming_content)
    assert_forbidden(
        client.post(
            "/api/v1/imports/",
            {"kind": "catalog", "csv_file": upload()},
            HTTP_AUTHORIZATION=basic(viewer),
        ),
        "catalog.add_importjob",
    )


def test_rest_import_with_exactly_the_add_permission_runs(
    client, shop, django_capture_on_commit_callbacks
):
    importer = staff_user("importer", "add_importjob")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/imports/",
            {"kind": "catalog", "csv_file": upload()},
            HTTP_AUTHORIZATION=basic(importer),
        )
    assert response.status_code == 202, response.content
    assert ImportJob.objects.get().status == "succeeded"
    assert Product.objects.get(sku="A1").title == "Renamed"


def test_rest_refused_fields_answer_in_the_error_shape(client, db):
    importer = staff_user("importer", "add_importjob")
    response = client.post(
        "/api/v1/imports/",
        {"kind": "outfits", "csv_file": upload(), "column_mapping": "title=name"},
        HTTP_AUTHORIZATION=basic(importer),
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_parameters"
    assert "unknown field(s) title" in error["details"]["column_mapping"][0]
    assert ImportJob.objects.count() == 0


def test_admin_import_pages_refuse_staff_without_permissions(client, finished_job):
    client.force_login(staff_user("nobody"))
    pages = [
        reverse("admin:catalog_importjob_upload"),
        reverse("admin:catalog_importjob_report", args=[finished_job.pk]),
        reverse("admin:catalog_importjob_rejections", args=[finished_job.pk]),
    ]
    for url in pages:
        assert client.get(url).status_code == 403, url
    upload_page = reverse("admin:catalog_importjob_upload")
    assert client.post(upload_page, {"kind": "catalog", "csv_file": upload()}).status_code == 403
    dry_run = ImportJob.objects.create(
        original_name="c.csv", source="2026/01/y.csv", status="succeeded", dry_run=True
    )
    apply = client.post(reverse("admin:catalog_importjob_apply", args=[dry_run.pk]))
    assert apply.status_code == 403
    assert ImportJob.objects.count() == 2


def test_admin_viewer_sees_reports_but_may_not_import(client, finished_job):
    client.force_login(staff_user("viewer", "view_importjob"))
    report = client.get(reverse("admin:catalog_importjob_report", args=[finished_job.pk]))
    assert report.status_code == 200 and "not a number" in report.content.decode()
    rejections = client.get(reverse("admin:catalog_importjob_rejections", args=[finished_job.pk]))
    assert b"not a number" in b"".join(rejections.streaming_content)
    changelist = client.get(reverse("admin:catalog_importjob_changelist")).content.decode()
    assert reverse("admin:catalog_importjob_upload") not in changelist
    assert client.get(reverse("admin:catalog_importjob_upload")).status_code == 403


def test_admin_importer_with_exactly_the_add_permission_uploads(
    client, shop, django_capture_on_commit_callbacks
):
    client.force_login(staff_user("importer", "add_importjob"))
    assert client.get(reverse("admin:catalog_importjob_upload")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:catalog_importjob_upload"),
            {"kind": "catalog", "csv_file": upload(), "create_categories": "on"},
        )
    assert response.status_code == 302
    assert Product.objects.get(sku="A1").title == "Renamed"
