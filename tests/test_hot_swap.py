"""Activating a version while the API answers: no request fails, every response is wholly one
version's answer, and while a process loads the new version it keeps serving the old one."""

import json
import random
import threading
import time
import urllib.request

import pytest
from django.core.management import call_command

from catalog.models import Product
from embeddings import versions
from embeddings.engine.index import CompatibilityIndex
from embeddings.models import ModelVersion
from outfits.api_keys import create_api_key


@pytest.fixture
def two_versions(transactional_db, settings, small_catalog, use_backbone):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    settings.OUTFITS_ACTIVATION_MARGIN = -1.0  # activate each new version
    call_command("train", epochs=1, unfreeze_blocks=0)
    call_command("train", epochs=6, unfreeze_blocks=0)
    global AUTHORIZATION
    # As many requests as the server answers: no rate limit is tested here.
    key = create_api_key("hot swap", requests_per_minute=1_000_000)[1]
    AUTHORIZATION = f"Api-Key {key}"
    return list(ModelVersion.objects.order_by("created_at"))


AUTHORIZATION = ""


def matches(base_url: str, sku: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/api/v1/products/{sku}/matches/", headers={"Authorization": AUTHORIZATION}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_hot_swap_while_the_api_answers(two_versions, live_server, monkeypatch):
    skus = list(Product.objects.values_list("sku", flat=True)[:12])
    answers = {}
    for version in two_versions:
        versions.activate(version)
        answers[version.name] = {sku: matches(live_server.url, sku)["groups"] for sku in skus}
    first, second = (version.name for version in two_versions)
    assert answers[first] != answers[second], "the versions must answer differently"

    load = CompatibilityIndex.load.__func__

    def slow_load(cls, directory, **options):  # a big index takes a while to read
        time.sleep(0.5)
        return load(cls, directory, **options)

    monkeypatch.setattr(CompatibilityIndex, "load", classmethod(slow_load))
    seen, errors, stop = [], [], threading.Event()

    def shopper() -> None:
        while not stop.is_set():
            sku = random.choice(skus)
            try:
                data = matches(live_server.url, sku)
                seen.append((data["model_version"], sku, data["groups"]))
            except Exception as error:  # noqa: BLE001 - every failure is reported
                errors.append(repr(error))

    shoppers = [threading.Thread(target=shopper) for _ in range(4)]
    for thread in shoppers:
        thread.start()
    for version in two_versions * 3:
        versions.activate(version)
        time.sleep(0.8)
    stop.set()
    for thread in shoppers:
        thread.join()
    assert not errors
    assert {name for name, _, _ in seen} == {first, second}
    mixed = [(name, sku) for name, sku, groups in seen if groups != answers[name][sku]]
    assert not mixed, f"{len(mixed)} responses mixed versions: {mixed[:3]}"


def test_the_old_version_is_served_until_the_new_one_is_loaded(two_versions, live_server,
                                                               monkeypatch):  # fmt: skip
    old, new = two_versions
    versions.activate(old)
    sku = Product.objects.values_list("sku", flat=True).first()
    assert matches(live_server.url, sku)["model_version"] == old.name  # old is loaded
    load = CompatibilityIndex.load.__func__
    loading = threading.Event()

    def slow_load(cls, directory, **options):
        loading.set()
        time.sleep(2)
        return load(cls, directory, **options)

    monkeypatch.setattr(CompatibilityIndex, "load", classmethod(slow_load))
    versions.activate(new)
    first = {}
    loader = threading.Thread(target=lambda: first.update(matches(live_server.url, sku)))
    loader.start()
    assert loading.wait(10)
    during = matches(live_server.url, sku)  # asked while the new version loads
    loader.join()
    assert during["model_version"] == old.name
    assert first["model_version"] == new.name
    assert matches(live_server.url, sku)["model_version"] == new.name
