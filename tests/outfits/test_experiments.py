"""A/B tests of two model versions on the hand-made shop: stable assignment, each arm served by
its own version (in the API, the pages, rec_ids, events and ETags), the results with their
uncertainty, and starting, promoting and stopping from the admin."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from embeddings import versions
from embeddings.models import ModelVersion
from outfits.experiments import (
    ArmResult,
    arm_of,
    experiment_results,
    probability_b_beats_a,
    wilson_interval,
)
from outfits.models import Experiment, RecommendationEvent
from outfits.rec_ids import verify_rec_id

MATCHES = "/api/v1/products/{}/matches/"


@pytest.fixture
def two_versions(handmade_shop, handmade_version):
    """handmade-1 active (A) and handmade-2 (B), which knows every product but the top T3."""
    first = handmade_shop.version
    second = handmade_version([s for s in handmade_shop.products if s != "T3"], "handmade-2")
    versions.activate(first)
    return first, second


@pytest.fixture
def experiment(two_versions, db) -> Experiment:
    a, b = two_versions
    return Experiment.objects.create(name="head v2", version_a=a, version_b=b, share_b=0.5)


def uid_in(experiment: Experiment, arm: str) -> str:
    return next(f"shopper-{n}" for n in range(1000) if arm_of(experiment, f"shopper-{n}") == arm)


def test_shoppers_are_assigned_stably_and_in_the_share_asked(db, two_versions):
    a, b = two_versions
    tenth = Experiment.objects.create(name="a tenth", version_a=a, version_b=b, share_b=0.1)
    arms = [arm_of(tenth, f"u{n}") for n in range(20_000)]
    assert 0.09 < arms.count("B") / len(arms) < 0.11
    assert [arm_of(tenth, f"u{n}") for n in range(100)] == arms[:100]  # the same every time


def test_each_arm_is_answered_by_its_version_and_says_so(experiment, storefront):
    a_uid, b_uid = uid_in(experiment, "A"), uid_in(experiment, "B")
    for uid, arm, version in ((a_uid, "A", "handmade-1"), (b_uid, "B", "handmade-2")):
        data = storefront.get(MATCHES.format("T1"), {"uid": uid}).json()
        assert (data["experiment"], data["arm"], data["model_version"]) == (
            experiment.pk,
            arm,
            version,
        )
        answer = verify_rec_id(data["rec_id"])
        assert (answer.experiment_id, answer.arm) == (experiment.pk, arm)
    header = storefront.get(MATCHES.format("T1"), HTTP_X_SHOPPER_ID=b_uid).json()
    assert header["arm"] == "B"
    outside = storefront.get(MATCHES.format("T1")).json()  # no id: the active version
    assert (outside["arm"], outside["model_version"]) == (None, "handmade-1")
    etags = {storefront.get(MATCHES.format("T1"), {"uid": u})["ETag"] for u in (a_uid, b_uid)}
    assert len(etags) == 2  # a cached answer of one arm is never the other's
    look = storefront.post(
        "/api/v1/outfits/complete/", {"skus": ["T1"], "uid": b_uid}, format="json"
    ).json()
    assert (look["arm"], look["model_version"]) == ("B", "handmade-2")


def test_events_are_attributed_to_the_arm_that_answered(experiment, storefront):
    b_uid = uid_in(experiment, "B")
    data = storefront.get(MATCHES.format("T1"), {"uid": b_uid}).json()
    shown = [m["sku"] for g in data["groups"] for m in g["matches"]][:2]
    posted = storefront.post(
        "/api/v1/events/",
        {"rec_id": data["rec_id"], "type": "impression", "skus": shown},
        format="json",
    )
    assert posted.status_code == 201
    events = RecommendationEvent.objects.all()
    assert {(e.experiment_id, e.arm) for e in events} == {(experiment.pk, "B")}
    assert events.count() == 2


def test_results_carry_their_uncertainty_and_wait_for_enough_data(experiment, handmade_shop):
    def record(arm: str, impressions: int, clicks: int) -> None:
        product = handmade_shop["P1"]
        RecommendationEvent.objects.bulk_create(
            RecommendationEvent(
                rec_id="x",
                kind=kind,
                product=product,
                category_id=product.category_id,
                experiment=experiment,
                arm=arm,
            )
            for kind, count in (("impression", impressions), ("click", clicks))
            for _ in range(count)
        )

    record("A", 50, 2)
    record("B", 50, 5)
    early = experiment_results(experiment)
    assert not early.enough_data and early.verdict.startswith("Too little data")
    record("A", 1950, 98)  # 100 clicks of 2,000: 5%
    record("B", 1950, 155)  # 160 of 2,000: 8%
    late = experiment_results(experiment)
    a, b = late.arms
    assert (a.impressions, a.clicks, b.impressions, b.clicks) == (2000, 100, 2000, 160)
    assert b.ctr == pytest.approx(0.08) and b.ctr_interval[0] < 0.08 < b.ctr_interval[1]
    assert late.enough_data and late.b_beats_a > 0.99 and late.verdict.startswith("B is ahead")


def test_the_interval_and_the_posterior_match_known_values():
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-3) and high == pytest.approx(0.1744, abs=1e-3)
    same = probability_b_beats_a(ArmResult("A", "a", 1000, 50, 0), ArmResult("B", "b", 1000, 50, 0))
    assert same == pytest.approx(0.5, abs=0.01)
    assert wilson_interval(0, 0) is None


def test_pages_give_a_shopper_a_cookie_only_while_a_test_runs(two_versions, db):
    shopper = Client()
    assert "om_uid" not in shopper.get("/products/T1/").cookies
    a, b = two_versions
    running = Experiment.objects.create(name="t", version_a=a, version_b=b, share_b=0.5)
    first = shopper.get("/products/T1/")
    uid = first.cookies["om_uid"].value
    assert first.context["recommendations"].arm == (running.pk, arm_of(running, uid))
    again = shopper.get("/products/T1/")
    assert "om_uid" not in again.cookies  # kept, not replaced
    assert again.context["recommendations"].arm == first.context["recommendations"].arm


def test_staff_start_promote_and_stop_experiments_in_the_admin(two_versions, db):
    a, b = two_versions
    boss = User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(boss)
    form = {"name": "v2 against v1", "version_a": a.pk, "version_b": b.pk, "share_b": "0.2"}
    assert client.post("/admin/outfits/experiment/add/", form).status_code == 302
    experiment = Experiment.objects.get()
    assert experiment.started_by == boss and experiment.status == "running"
    second = client.post("/admin/outfits/experiment/add/", form | {"name": "again"})
    assert b"is running: stop it first" in second.content
    page = client.get(f"/admin/outfits/experiment/{experiment.pk}/change/")
    assert b"Too little data" in page.content and b"Promote B" in page.content

    client.post(f"/admin/outfits/experiment/{experiment.pk}/promote/")
    experiment.refresh_from_db()
    assert experiment.status == "promoted" and ModelVersion.objects.get(is_active=True) == b
    assert versions.collect_old_versions(keep=0) == []  # active and previous are kept

    again = Experiment.objects.create(name="back", version_a=b, version_b=a)
    client.post(f"/admin/outfits/experiment/{again.pk}/stop/")
    again.refresh_from_db()
    assert again.status == "stopped" and ModelVersion.objects.get(is_active=True) == b


def test_garbage_collection_keeps_a_running_tests_versions(two_versions, handmade_version):
    a, b = two_versions
    third = handmade_version(["T1", "P1", "S1"], "handmade-3")
    versions.activate(a)  # a active, the third previous: b is neither
    Experiment.objects.create(name="a against b", version_a=a, version_b=b)
    assert versions.collect_old_versions(keep=0) == []
    assert ModelVersion.objects.filter(pk__in=[a.pk, b.pk, third.pk]).count() == 3
