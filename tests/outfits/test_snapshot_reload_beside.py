"""A large change (a big import) is loaded into a web process's serving snapshot beside the
one it serves: requests keep answering from the previous snapshot meanwhile and never wait for
the reload; a request's own writes are still seen at once."""

import threading

import psycopg
import pytest
from django.db import connection

from catalog.models import Category, Product
from outfits import serving
from outfits.api_keys import create_api_key
from outfits.serving import current_snapshot
from tests.support import matches_status, wait_for

INLINE = 3  # a change of more products than this is loaded beside


def status(web_server: str, raw_key: str, sku: str) -> int:
    # Well under the web statement timeout: a request waiting on the reload fails here.
    return matches_status(web_server, raw_key, sku, timeout=8)


@pytest.fixture
def site_env(site_env: dict[str, str]) -> dict[str, str]:
    return {**site_env, "OUTFITS_SNAPSHOT_INLINE_PRODUCTS": str(INLINE)}


@pytest.mark.django_db(transaction=True)
def test_requests_answer_from_the_previous_snapshot_while_a_large_change_loads(web_server):
    tops = Category.objects.create(name="Tops")
    Product.objects.create(sku="T0", title="Top", category=tops, in_stock=True)
    _, raw_key = create_api_key("shop")
    assert status(web_server, raw_key, "T0") == 200
    assert status(web_server, raw_key, "N0") == 404

    # Committed by this (another) process: more products than a request loads itself.
    Product.objects.bulk_create(
        [Product(sku=f"N{i}", title=f"New {i}", category=tops) for i in range(INLINE + 2)]
    )
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
    ) as blocker:
        # Every read of the products table waits while this transaction holds its lock: the
        # reload does, the requests must not.
        blocker.execute(f"LOCK TABLE {Product._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        for _ in range(3):
            assert status(web_server, raw_key, "T0") == 200
            assert status(web_server, raw_key, "N0") == 404  # the previous, whole
        blocker.rollback()

    wait_for(lambda: status(web_server, raw_key, "N0") == 200, "the change served", timeout=20)


@pytest.mark.django_db(transaction=True)
def test_a_large_change_of_a_requests_own_is_seen_at_once(settings):
    settings.OUTFITS_SNAPSHOT_INLINE_PRODUCTS = INLINE
    tops = Category.objects.create(name="Tops")
    Product.objects.create(sku="T0", title="Top", category=tops)
    assert set(current_snapshot().products) == {"T0"}
    Product.objects.bulk_create(
        [Product(sku=f"N{i}", title=f"New {i}", category=tops) for i in range(INLINE + 2)]
    )
    assert len(current_snapshot().products) == INLINE + 3  # read-your-writes: loaded inline


@pytest.mark.django_db(transaction=True)
def test_a_large_change_of_another_thread_is_swapped_in_whole_when_loaded(settings):
    settings.OUTFITS_SNAPSHOT_INLINE_PRODUCTS = INLINE
    tops = Category.objects.create(name="Tops")
    Product.objects.create(sku="T0", title="Top", category=tops)
    before = current_snapshot()

    def import_elsewhere() -> None:
        Product.objects.bulk_create(
            [Product(sku=f"N{i}", title=f"New {i}", category=tops) for i in range(INLINE + 2)]
        )
        Product.objects.filter(sku="T0").update(title="Renamed")
        connection.close()

    writer = threading.Thread(target=import_elsewhere)
    writer.start()
    writer.join(30)
    assert current_snapshot() is before  # the previous one, whole, while the new one loads
    assert serving._builder is not None
    serving._builder.join(30)
    seen = current_snapshot()
    assert seen.product("T0").title == "Renamed" and len(seen.products) == INLINE + 3
