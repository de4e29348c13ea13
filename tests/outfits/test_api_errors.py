"""Under /api/ every error is JSON in the one error shape, also those Django answers itself (no
route, a crash, a refused request), with DEBUG off as in production; elsewhere the HTML pages
stay."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

import shop.views
from outfits import recommendations


@pytest.fixture(autouse=True)
def production_errors(settings):
    settings.DEBUG = False  # Django's own error pages (and so the handlers) only without DEBUG


def error_of(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    (error,) = response.json().values()
    assert set(response.json()) == {"error"} and set(error) <= {"code", "message", "details"}
    return error


@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/api/v2/products/", "/api/"])
def test_an_unmatched_api_path_is_a_json_404(db, storefront, path):
    for client in [storefront, Client()]:  # with a key or without
        error = error_of(client.get(path), 404)
        assert error["code"] == "not_found"
        assert path in error["message"] and "/api/docs/" in error["message"]
    assert error_of(storefront.post(path, {}, format="json"), 404)["code"] == "not_found"


def test_outside_the_api_a_missing_page_stays_html(db, client):
    response = client.get("/no-such-page/here/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_method_an_endpoint_does_not_take_is_a_json_405(handmade_shop, storefront):
    error = error_of(storefront.delete("/api/v1/events/"), 405)
    assert error == {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}
    assert error_of(storefront.put("/api/v1/products/T1/matches/"), 405)["code"] == (
        "method_not_allowed"
    )


def test_a_crash_inside_an_api_view_is_a_json_500_that_hides_its_cause(
    handmade_shop, storefront, monkeypatch, caplog
):
    def broken(*args, **kwargs):  # a bug in the service the view calls
        raise RuntimeError("secret internals")

    monkeypatch.setattr(recommendations, "goes_well_with", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {storefront.raw_key}")
    response = client.get("/api/v1/products/T1/matches/")
    error = error_of(response, 500)
    assert error["code"] == "server_error" and "logged" in error["message"]
    assert b"secret internals" not in response.content and b"Traceback" not in response.content
    assert "secret internals" in caplog.text  # Django logged it for us


def test_outside_the_api_a_crash_stays_the_html_500_page(handmade_shop, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(shop.views, "goes_well_with", broken)
    response = Client(raise_request_exception=False).get("/products/T1/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
    assert b"secret internals" not in response.content


def test_a_request_django_refuses_is_a_json_400_under_the_api(db, settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    error = error_of(Client().get("/api/v1/products/", HTTP_HOST="evil.example.net"), 400)
    assert error["code"] == "bad_request"
    page = Client().get("/", HTTP_HOST="evil.example.net")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
