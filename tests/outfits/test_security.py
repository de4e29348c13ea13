"""Production settings (`check --deploy` clean, a secret key required), the Content-Security-
Policy of every page, and a new API key that no cookie carries."""

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest

from outfits.security import API_DOCS_POLICY, SITE_POLICY
from tests.support import ROOT

SITE_VARIABLES = ("DJANGO_", "OUTFITS_", "DATABASE_URL", "REDIS_URL", "CELERY_")


def site_process_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment of a site process with only `variables` set of the site's own."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(SITE_VARIABLES)}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        **variables,
    }


def production_env(tmp_path: Path) -> dict[str, str]:
    """README's production settings ("Running in production")."""
    return site_process_env(
        tmp_path,
        DATABASE_URL="postgres://outfits@db.internal:5432/outfits",
        REDIS_URL="redis://cache.internal:6379/1",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="shop.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        OUTFITS_TRUSTED_PROXIES="1",
        DJANGO_SECURE_HSTS_PRELOAD="true",
    )


def manage(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRINT_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.SECRET_KEY, s.OUTFITS_SERVE_MEDIA, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)"
)


def test_production_settings_pass_the_deploy_check_with_no_warning(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_production_without_a_secret_key_refuses_to_start_saying_how_to_set_it(tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    result = manage(env, "check", "--deploy")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr
    assert not (tmp_path / "var" / "secret-key.txt").exists()  # no key of its own made up


def test_production_leaves_media_to_the_web_server_unless_asked(tmp_path):
    env = production_env(tmp_path)
    _, serve_media, ssl_redirect, secure_cookie = manage(
        env, "shell", "--no-imports", "-c", PRINT_SETTINGS
    ).stdout.split()
    assert (serve_media, ssl_redirect, secure_cookie) == ("False", "True", "True")
    env["OUTFITS_SERVE_MEDIA"] = "true"
    assert manage(env, "shell", "--no-imports", "-c", PRINT_SETTINGS).stdout.split()[1] == "True"


def test_a_local_install_makes_its_secret_key_once_and_keeps_it(tmp_path):
    env = site_process_env(tmp_path)  # `make demo`: no variable set, SQLite under var/
    first = manage(env, "shell", "--no-imports", "-c", PRINT_SETTINGS)
    assert first.returncode == 0, first.stderr
    key, serve_media, ssl_redirect, secure_cookie = first.stdout.split()
    assert (serve_media, ssl_redirect, secure_cookie) == ("True", "False", "False")
    key_file = tmp_path / "var" / "secret-key.txt"
    assert key_file.read_text() == key and len(key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert manage(env, "shell", "--no-imports", "-c", PRINT_SETTINGS).stdout.split()[0] == key
    other_install = site_process_env(tmp_path / "other")
    assert (
        manage(other_install, "shell", "--no-imports", "-c", PRINT_SETTINGS).stdout.split()[0]
        != key
    )


def test_a_malformed_proxy_ssl_header_is_refused_clearly(tmp_path):
    env = production_env(tmp_path) | {"DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
    result = manage(env, "check")
    assert result.returncode != 0
    assert "e.g. HTTP_X_FORWARDED_PROTO,https" in result.stderr


# --- Content-Security-Policy ---


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("merch", "merch@example.com", "pw")
    client.force_login(user)
    return client


def test_shop_pages_and_admin_carry_the_site_policy(handmade_shop, staff):
    product = handmade_shop.products["T1"]
    for path in [
        "/",
        product.get_absolute_url(),
        "/admin/",
        "/admin/embeddings/modelversion/",
        "/admin/outfits/apikey/add/",
    ]:
        response = staff.get(path)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == SITE_POLICY, path
    assert "script-src 'self';" in SITE_POLICY and "unsafe-inline" not in SITE_POLICY


def test_the_admin_login_page_carries_the_site_policy(client, db):
    response = client.get("/admin/login/")
    assert response["Content-Security-Policy"] == SITE_POLICY


def test_api_docs_run_no_inline_script_under_their_own_policy(client, db):
    for path in ["/api/docs/", "/api/redoc/"]:
        response = client.get(path)
        assert response.status_code == 200
        assert response["Content-Security-Policy"] == API_DOCS_POLICY
        page = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), page  # every script a file
        assert "fonts.googleapis.com" not in page
    assert "'unsafe-inline'" not in API_DOCS_POLICY.split("script-src")[1].split(";")[0]


def test_site_templates_have_no_inline_script_or_style():
    """What the site policy would refuse: inline <script>, <style>, style="", on*= handlers.
    (templates/api/ holds the docs pages, which have a policy of their own.)"""
    offending = []
    for template in (ROOT / "templates").rglob("*.html"):
        if template.parent.name == "api":
            continue
        text = template.read_text()
        for pattern in [r"<script(?![^>]*\bsrc=)", r"<style", r"\sstyle=", r"\son\w+="]:
            if re.search(pattern, text):
                offending.append(f"{template.relative_to(ROOT)}: {pattern}")
    assert not offending


# --- A new API key is shown once, on the page itself ---


def cookie_contents(response) -> list[str]:
    """Every cookie a response sets, as sent and, for Django's messages cookie, decoded."""
    contents = []
    for cookie in response.cookies.values():
        contents.append(cookie.value)
        if cookie.key == CookieStorage.cookie_name and cookie.value:
            contents.append(repr(CookieStorage(HttpRequest())._decode(cookie.value)))
    return contents


def test_a_new_api_key_travels_in_no_cookie(handmade_shop, staff):
    responses = [
        staff.post(
            "/admin/outfits/apikey/add/",
            {"name": "Main shop", "allowed_origins": "", "requests_per_minute": ""},
        )
    ]
    while responses[-1].status_code == 302:  # wherever the admin goes next, until a page
        responses.append(staff.get(responses[-1]["Location"]))
    raw_key = re.search(r"\bom_\w+_[\w-]+", responses[-1].content.decode()).group(0)
    for response in [*responses, staff.get("/admin/outfits/apikey/")]:
        assert not any(raw_key in content for content in cookie_contents(response))
