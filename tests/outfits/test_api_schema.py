"""The storefront API against its own OpenAPI schema: schemathesis (every check: server errors,
status codes, content types, response schemas, negative data rejected, auth not ignored...) calls
every endpoint of the live test server, authenticated as the schema says, and must find nothing."""

import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission, User

from outfits.api_keys import create_api_key

SCHEMATHESIS = f"{sys.prefix}/bin/st"  # a dev dependency: `make test` installs it

# Schema-valid values that must name what the server has: a category of this catalog, a rec_id
# it signed, an uploaded file that is a photo, a folder under the import roots, fields the
# importer knows. The API rightly answers those with a 400 naming the value (tested one by one
# in tests/outfits/test_api.py and tests/catalog/); everywhere else a schema-valid request
# must succeed (or be a 404 for an unknown SKU or job). Attribute filters and boosts are
# checked as the server reads them too (a 400 that says how to write one).
NAMES_SERVER_STATE = [
    "v1_products_list",
    "v1_products_matches_retrieve",
    "v1_matches_retrieve",
    "v1_matches_batch_create",
    "v1_outfits_complete_create",
    "v1_matches_by_image_create",
    "v1_events_create",
    "v1_imports_create",
]


@pytest.fixture
def api_credentials(transactional_db, trained_shop) -> tuple[str, str, str]:
    """A storefront key, and a staff user who may import (HTTP Basic)."""
    _, raw_key = create_api_key("Schemathesis", [])
    staff = User.objects.create_user("importer", password="fuzz-the-api", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["add_importjob", "view_importjob"])
    )
    return raw_key, "importer", "fuzz-the-api"


def test_every_endpoint_conforms_to_its_schema(live_server, api_credentials, tmp_path, settings):
    settings.OUTFITS_API_REQUESTS_PER_MINUTE = 1_000_000  # the fuzzer is no abusive storefront
    raw_key, username, password = api_credentials
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[auth.openapi.ApiKey]
api_key = "Api-Key {raw_key}"

[auth.openapi.basicAuth]
username = "{username}"
password = "{password}"

[generation]
max-examples = 15

[[operations]]
include-operation-id = {NAMES_SERVER_STATE!r}
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "429"]
"""
    )
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{live_server.url}/api/schema/",
            "--checks",
            "all",
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    assert "11 selected / 11 total" in result.stdout and "Tested: 11" in result.stdout
