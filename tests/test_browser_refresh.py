"""In a real browser (Debian's chromium driven by Playwright), staff edit products in the admin
of a site process; a real Celery worker (Redis broker, the test's PostgreSQL) refreshes the
active version: a new picture gives the product new matches, a deactivated product leaves
every list. The screenshot is kept in test-artifacts/."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Product
from embeddings.loaded_versions import active_compatibility_index
from embeddings.models import VersionRefresh
from tests.support import ARTIFACTS, CHROMIUM, chromium_page, wait_for

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test)"),
]
MATCHES = "/api/v1/products/{}/matches/"


@pytest.fixture
def refreshing_site(site_env: dict[str, str]) -> dict[str, str]:
    """The site's processes refresh on catalog changes, as deployed (a short delay)."""
    site_env.update({"OUTFITS_REFRESH_ON_CHANGE": "true", "OUTFITS_REFRESH_DELAY_SECONDS": "0.2"})
    return site_env


def matched(storefront, sku: str) -> list[str]:
    data = storefront.get(MATCHES.format(sku), {"limit": 9}).json()
    return [m["sku"] for group in data["groups"] for m in group["matches"]]


def refreshes(count: int) -> VersionRefresh:
    """The `count`-th refresh, once it has finished."""
    finished = VersionRefresh.objects.exclude(status="running").order_by("pk")
    return wait_for(lambda: finished[count - 1] if finished.count() >= count else None,
                    f"refresh {count}", 120)  # fmt: skip


def test_admin_edits_are_refreshed_in_by_a_worker(
    refreshing_site, small_catalog, web_server, start_worker, storefront
):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=2, unfreeze_blocks=0)
    get_user_model().objects.create_superuser("staff", "staff@example.com", "a-long-password")
    start_worker(queue=refreshing_site["OUTFITS_REFRESH_QUEUE"])
    _, index = active_compatibility_index()
    edited = Product.objects.get(sku=index.skus[0])
    picture = Path(Product.objects.get(sku=index.skus[-1]).image.path)  # another category's
    before = matched(storefront, edited.sku)
    anchor = index.skus[len(index.skus) // 2]
    shown = Product.objects.get(sku=matched(storefront, anchor)[0])

    # The ORM is not called while a page is open (Playwright runs an event loop).
    save_in_admin(web_server, edited.pk, lambda page: page.set_input_files("#id_image", picture))
    first = refreshes(1)
    assert first.status == "succeeded", first.message
    assert (first.added, first.changed, first.removed) == (0, 1, 0)
    assert matched(storefront, edited.sku) != before  # matched by its new picture

    save_in_admin(web_server, shown.pk, lambda page: page.uncheck("#id_active"), "saved.png")
    second = refreshes(2)
    assert (second.status, second.removed) == ("succeeded", 1), second.message
    _, after = active_compatibility_index()
    assert shown.sku not in after.row_of_sku  # in no list: not even a row
    assert shown.sku not in matched(storefront, anchor)


def save_in_admin(url: str, product_id: int, edit, screenshot: str = "") -> None:
    """Log in as staff, `edit(page)` the product's change form, save it."""
    with chromium_page() as page:
        page.goto(f"{url}/admin/login/?next=/admin/catalog/product/{product_id}/change/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "a-long-password")
        page.click("input[type=submit]")
        edit(page)
        page.click("input[name=_save]")
        page.wait_for_selector("text=was changed successfully")
        if screenshot:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"admin-product-{screenshot}"), full_page=True)
