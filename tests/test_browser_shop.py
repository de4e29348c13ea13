"""The shop in a real browser (Debian's chromium driven by Playwright): list, detail with "Goes
well with", complete the look with shuffle, by keyboard, on a phone, and without JavaScript.
Screenshots are kept in test-artifacts/."""

from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Product
from tests.support import ARTIFACTS, CHROMIUM, chromium_page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test)")


@pytest.fixture
def served_shop(transactional_db, small_catalog, use_backbone, live_server) -> str:
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=4, unfreeze_blocks=0)
    return live_server.url


def screenshot(page, name: str) -> None:
    """The whole page, once every lazy image has been scrolled into view and has loaded."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(  # a function: a bare expression is eval'd, which CSP refuses
        "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_shopper_browses_matches_and_completes_a_look(served_shop, settings):
    top = Product.objects.filter(category__name="Tops").order_by("sku").first()
    shoe = Product.objects.filter(category__name="Shoes").order_by("sku").first()
    shoe_photo = Path(settings.MEDIA_ROOT) / shoe.image.name
    with chromium_page() as page:
        page.goto(f"{served_shop}/")
        cards = page.locator("a.card")
        assert cards.count() >= 20
        missing_alt = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.alt).length")
        assert missing_alt == 0
        assert page.eval_on_selector_all(
            "a.card img", "imgs => imgs.every(i => i.loading === 'lazy')"
        )
        screenshot(page, "shop-product-list.png")

        page.keyboard.press("Tab")  # the first stop is the skip link, and it shows
        assert page.evaluate("document.activeElement.className") == "skip-link"
        assert page.evaluate("document.activeElement.getBoundingClientRect().left") >= 0

        page.click("nav.categories >> text=Tops")
        titles = page.locator("a.card .card-title").all_text_contents()
        assert titles and all("top" in t.lower() or "shirt" in t.lower() or t for t in titles)
        page.goto(f"{served_shop}{top.get_absolute_url()}")
        rows = page.locator(".goes-well-with h3").all_text_contents()
        assert len(rows) >= 2 and "Tops" not in rows
        assert page.locator(".goes-well-with a.card").count() >= 2 * len(rows) - 1
        screenshot(page, "shop-product-detail.png")

        page.click("text=Complete the look")
        page.wait_for_selector(".look")
        first = page.locator(".look a.card").evaluate_all("cards => cards.map(c => c.href)")
        assert len(first) >= 3  # the product and at least two pieces
        screenshot(page, "shop-complete-the-look.png")
        page.click("text=Shuffle")
        page.wait_for_url("**shuffle=1")
        second = page.locator(".look a.card").evaluate_all("cards => cards.map(c => c.href)")
        assert second[0] == first[0] and second != first

        page.click("text=Match something you own")
        page.set_input_files("#id_photo", str(shoe_photo))
        page.click("text=Find matches")
        page.wait_for_selector("#photo-matches-heading")
        assert page.locator("section a.card").count() >= 2
        screenshot(page, "shop-match-photo.png")


def test_matches_work_without_javascript_and_on_a_phone(served_shop):
    top = Product.objects.filter(category__name="Tops").order_by("sku").first()
    phone = {"viewport": {"width": 390, "height": 844}, "java_script_enabled": False}
    with chromium_page(**phone) as page:
        page.goto(f"{served_shop}{top.get_absolute_url()}")
        assert page.locator(".goes-well-with a.card").count() >= 2
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        screenshot(page, "shop-product-detail-phone.png")
        page.click("text=Complete the look")
        assert page.locator(".look a.card").count() >= 3
