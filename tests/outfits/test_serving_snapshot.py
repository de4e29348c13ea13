"""The web processes' serving snapshot: every way of writing what shoppers may be shown is
noticed on the next request, a change reloads only the products it touched, and a web server
process sees a change committed by another process."""

from decimal import Decimal

import pytest
from django.db import transaction

from catalog.changes import current_generation, note_change, products_changed_between
from catalog.models import Category, Product
from outfits.api_keys import create_api_key, revoke_api_key
from outfits.models import BlockedProduct, PinnedMatch
from outfits.serving import current_snapshot
from tests.support import matches_status


@pytest.fixture
def shop(db):
    tops = Category.objects.create(name="Tops")
    shoes = Category.objects.create(name="Shoes")
    products = [
        Product.objects.create(sku=f"T{i}", title=f"Top {i}", category=tops) for i in range(3)
    ]
    products.append(Product.objects.create(sku="S1", title="Shoe", category=shoes))
    return {p.sku: p for p in products}


def test_instance_and_bulk_writes_are_seen_by_the_next_request(shop):
    assert set(current_snapshot().products) == {"T0", "T1", "T2", "S1"}
    Product.objects.filter(sku="T0").update(in_stock=False)
    assert current_snapshot().product("T0").in_stock is False
    shop["T1"].title = "Renamed"
    shop["T1"].save()
    assert current_snapshot().product("T1").title == "Renamed"
    shop["T2"].price = Decimal("9.50")
    Product.objects.bulk_update([shop["T2"]], ["price"])
    assert current_snapshot().product("T2").price == Decimal("9.50")
    Product.objects.bulk_create([Product(sku="N1", title="New", category=shop["S1"].category)])
    assert current_snapshot().product("N1").title == "New"
    Product.objects.filter(sku="N1").update(active=False)
    assert current_snapshot().product("N1") is None
    shop["S1"].delete()
    assert current_snapshot().product("S1") is None


def test_a_change_reloads_only_the_products_it_touched(shop):
    before = current_snapshot()
    Product.objects.filter(sku="T0").update(colour="red")
    after = current_snapshot()
    assert products_changed_between(before.generation, after.generation) == {shop["T0"].pk}
    assert after.product("T1") is before.product("T1")  # the same card: not reloaded
    assert after.product("T0") is not before.product("T0")


def test_a_change_of_rules_only_keeps_the_products_as_they_are(shop):
    """Every activation and refresh is such a change: the request that notices it does not
    copy the catalog's cards (tens of milliseconds at 1M)."""
    before = current_snapshot()
    PinnedMatch.objects.create(product=shop["T0"], match=shop["S1"], position=1)
    after = current_snapshot()
    assert after.rules.pins == {"T0": [("S1", 1)]}
    assert after.products is before.products and after.sku_of_id is before.sku_of_id
    Product.objects.filter(sku="T0").update(colour="red")  # a product change: its own dicts
    changed = current_snapshot()
    assert changed.products is not after.products and changed.product("T0").colour == "red"
    assert after.product("T0").colour != "red"  # the snapshot before it is untouched


def test_import_bookkeeping_is_not_a_change(shop):
    before = current_generation()
    Product.objects.filter(sku="T0").update(import_line=7)
    Product.objects.bulk_update([shop["T1"]], ["import_line"])
    assert current_generation() == before
    Product.objects.filter(sku="T0").update(title="Changed")
    assert current_generation()[0] == before[0] + 1


def test_rules_keys_and_categories_are_seen_at_once(shop):
    PinnedMatch.objects.create(product=shop["T0"], match=shop["S1"], position=1)
    BlockedProduct.objects.create(product=shop["T1"])
    key, _ = create_api_key("shop")
    rules = current_snapshot().rules
    assert rules.pins == {"T0": [("S1", 1)]} and rules.blocked == {"T1"}
    assert rules.api_keys == {key.prefix: key}
    revoke_api_key(key)
    assert current_snapshot().rules.api_keys == {}
    Category.objects.filter(name="Tops").update(name="Shirts")
    assert current_snapshot().product("T0").category.name == "Shirts"


def test_a_rolled_back_or_restored_counter_is_a_full_reload(shop):
    seen = current_snapshot()
    with pytest.raises(RuntimeError), transaction.atomic():
        Product.objects.filter(sku="T0").update(title="Never committed")
        assert current_snapshot().product("T0").title == "Never committed"  # own transaction
        raise RuntimeError("roll back")
    # The counter is back at `seen`'s number, but this process's snapshot is past it: the
    # stamps differ, so it reloads everything rather than trust the log.
    assert current_generation() == seen.generation
    assert current_snapshot().product("T0").title == "Top 0"
    note_change(None)
    assert products_changed_between(seen.generation, current_generation()) is None


def test_the_log_tells_a_gap_from_a_history(db):
    note_change([1])
    first = current_generation()
    note_change([2, 3])
    note_change([])
    assert products_changed_between(first, current_generation()) == {2, 3}
    assert products_changed_between((first[0], "other stamp"), current_generation()) is None


@pytest.mark.django_db(transaction=True)
def test_a_web_server_process_sees_a_change_committed_by_another(web_server, settings):
    tops = Category.objects.create(name="Tops")
    product = Product.objects.create(sku="T0", title="Top", category=tops, in_stock=True)
    _, raw_key = create_api_key("shop")

    assert matches_status(web_server, raw_key, "T0") == 200
    Product.objects.filter(pk=product.pk).update(active=False)  # committed: autocommit
    assert matches_status(web_server, raw_key, "T0") == 404
    product.active = True
    product.save()
    assert matches_status(web_server, raw_key, "T0") == 200


def test_the_rules_load_by_what_they_name_not_by_scanning_the_catalog(shop):
    """Rules reload at every change (an activation, a refresh, a pin), in the request that
    notices it. Joined to the products in one query, PostgreSQL hashed the whole catalog for a
    handful of rules: 48 ms at 100k products in each web process at once. Every query the load
    runs is planned here, on a catalog of 20,000, and none reads the catalog through."""
    from django.db import connection

    from outfits.models import BlockedPair
    from outfits.serving import Rules

    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's (OUTFITS_TEST_DATABASE_URL)")
    tops = shop["T0"].category
    Product.objects.bulk_create(
        [Product(sku=f"X{n}", title="Top", category=tops) for n in range(20_000)],
        batch_size=5_000,
    )
    BlockedPair.objects.create(product=shop["T0"], other=shop["S1"])
    PinnedMatch.objects.create(product=shop["T1"], match=shop["S1"], position=1)
    BlockedProduct.objects.create(product=shop["T2"])
    executed: list[tuple[str, object]] = []

    def noted(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(noted):
        rules = Rules.load()

    assert rules.blocked_with == {"T0": {"S1"}, "S1": {"T0"}}
    assert rules.pins == {"T1": [("S1", 1)]} and rules.blocked == {"T2"}
    with connection.cursor() as cursor:
        for sql, params in executed:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on catalog_product" not in plan, f"{sql}\n{plan}"


def test_a_web_workers_full_snapshot_is_kept_out_of_the_garbage_collectors_sight(shop):
    """warm_up's choice for web workers: at 1M products a full pass of the cyclic collector
    over the cards takes about 300 ms, and any allocation may set one off."""
    import gc

    from outfits import serving

    def tracked(card) -> bool:  # gc.get_objects() leaves out the frozen
        return any(o is card for o in gc.get_objects())

    assert tracked(current_snapshot().product("T0"))
    try:
        serving.keep_snapshots_out_of_the_collector()
        assert not tracked(current_snapshot().product("T0"))
        note_change(None)  # reload everything: the new cards are frozen too
        reloaded = current_snapshot().product("T1")
        assert not tracked(reloaded)
    finally:
        serving._freezing = False
        gc.unfreeze()
