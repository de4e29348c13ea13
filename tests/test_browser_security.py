"""The Content-Security-Policy in a real browser (Debian's chromium): the shop, the admin and the
API docs render, and the browser refuses nothing on them (it says so on its console)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Product
from tests.support import CHROMIUM, chromium_page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test)")

API_TITLE = "Outfit matcher storefront API"
# Redoc's "API docs by Redocly" logo comes from its CDN: refused, as meant (nothing loads from
# other sites), and Redoc hides the broken image.
THIRD_PARTY_REFUSED = "'https://cdn.redoc.ly/redoc/logo-mini.svg'"


def test_shop_admin_and_api_docs_render_with_nothing_refused(
    transactional_db, small_catalog, live_server
):
    call_command("import_catalog", str(small_catalog.products_csv))
    product = Product.objects.order_by("sku").first()
    get_user_model().objects.create_superuser("staff", "staff@example.com", "a-long-password")
    refused: list[str] = []
    with chromium_page() as page:
        page.on(
            "console",
            lambda message: (
                refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                and THIRD_PARTY_REFUSED not in message.text
                else None
            ),
        )
        page.goto(f"{live_server.url}/")
        page.wait_for_function(  # product thumbnails load from /media/ (img-src 'self')
            "() => Array.from(document.images).some(i => i.complete && i.naturalWidth > 0)"
        )
        page.goto(f"{live_server.url}{product.get_absolute_url()}")
        page.wait_for_selector("h1")

        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "a-long-password")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        # The site's admin styles are a file now, and apply.
        assert (
            page.eval_on_selector(".import-module", "e => getComputedStyle(e).marginBottom")
            == "16px"
        )
        page.goto(f"{live_server.url}/admin/embeddings/modelversion/")
        page.wait_for_selector("#changelist")
        page.goto(f"{live_server.url}/admin/outfits/apikey/add/")
        page.wait_for_selector("#apikey_form")

        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(f".swagger-ui .info .title:has-text('{API_TITLE}')")
        page.wait_for_selector(".opblock-summary-path")  # the operations, from the schema
        page.goto(f"{live_server.url}/api/redoc/")
        page.wait_for_selector(f"h1:has-text('{API_TITLE}')")
        page.wait_for_selector("[data-section-id^='operation']")
    assert not refused, "\n".join(refused)
