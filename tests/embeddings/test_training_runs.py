"""Training runs as jobs, in one process: the lock, cancel, stale runs, the activation
decision, rollback and garbage collection of old versions; the admin pages of all of it."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from embeddings import versions as model_versions
from embeddings.models import ModelVersion, TrainingRun
from embeddings.training_runs import (
    TrainingAlreadyRunning,
    activation_rule,
    create_training_run,
    decide,
    fail_stale_training_runs,
    request_cancel,
    seconds_left,
)


@pytest.fixture
def shop(db, small_catalog, use_backbone):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=2, unfreeze_blocks=0)
    return ModelVersion.objects.get(is_active=True)


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return user


def test_only_one_run_at_a_time_and_the_refusal_says_which(db):
    first = create_training_run(epochs=3)
    with pytest.raises(TrainingAlreadyRunning, match=f"Training run {first.pk} is already queued"):
        create_training_run()
    TrainingRun.objects.filter(pk=first.pk).update(status="running")
    with pytest.raises(TrainingAlreadyRunning, match="already running"):
        create_training_run()
    TrainingRun.objects.filter(pk=first.pk).update(status="succeeded")
    assert create_training_run().status == "queued"


def test_bad_options_are_refused_before_a_run_is_recorded(db):
    with pytest.raises(ValueError, match="epochs must be a whole number of at least 1"):
        create_training_run(epochs=0)
    with pytest.raises(ValueError, match="Unknown backbone checkpoint /etc/passwd"):
        create_training_run(pretrained="/etc/passwd")
    assert not TrainingRun.objects.exists()


def test_cancel_ends_a_queued_run_at_once_and_flags_a_running_one(db):
    queued = create_training_run()
    assert "before it started" in request_cancel(queued)
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.finished_at
    running = create_training_run()  # the lock was released
    TrainingRun.objects.filter(pk=running.pk).update(status="running")
    assert "next batch" in request_cancel(running)
    running.refresh_from_db()
    assert running.cancel_requested and running.status == "running"
    TrainingRun.objects.filter(pk=running.pk).update(status="cancelled")
    with pytest.raises(ValueError, match="already finished"):
        request_cancel(running)


def test_a_run_whose_heartbeat_went_stale_is_failed_and_frees_the_lock(db, settings):
    settings.OUTFITS_TRAINING_STALE_SECONDS = 60
    lost = create_training_run()
    now = timezone.now()
    TrainingRun.objects.filter(pk=lost.pk).update(
        status="running", started_at=now - timedelta(minutes=5), worker="w1 pid 7",
        heartbeat_at=now - timedelta(seconds=61),
    )  # fmt: skip
    assert fail_stale_training_runs() == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and "w1 pid 7" in lost.message
    alive = create_training_run()
    TrainingRun.objects.filter(pk=alive.pk).update(
        status="running", started_at=now - timedelta(minutes=5), heartbeat_at=timezone.now()
    )
    assert fail_stale_training_runs() == 0


def test_a_version_that_is_not_better_is_kept_inactive(shop, settings, capsys):
    settings.OUTFITS_ACTIVATION_MARGIN = 1.0  # no version can beat another by a whole FITB
    call_command("train", epochs=1, unfreeze_blocks=0)
    run = TrainingRun.objects.latest("created_at")
    assert run.status == "succeeded" and run.outcome == "kept_inactive"
    assert "kept inactive" in run.message and "OUTFITS_ACTIVATION_MARGIN" in run.message
    assert ModelVersion.objects.get(is_active=True) == shop
    comparison = run.comparison
    assert comparison["active_version"] == shop.name and comparison["questions"] > 0
    assert comparison["new"]["fitb"] is not None and comparison["active"]["fitb"] is not None
    assert shop.name in capsys.readouterr().out  # the command prints the comparison
    assert len(run.stages["training compatibility head"]["marks"]) == 1  # when each epoch ended


def test_the_retrain_form_states_the_rule_the_gate_applies(shop, staff, client, settings):
    tie = {"new": {"fitb": 0.5}, "active": {"fitb": 0.5}, "active_version": "older"}
    settings.OUTFITS_ACTIVATION_MARGIN = 0.0
    page = client.get(reverse("admin:embeddings_modelversion_retrain")).content.decode()
    assert "a tie activates the newer one" in page and "only if it is better" not in page
    assert decide(shop, tie)["outcome"] == "activated"
    settings.OUTFITS_ACTIVATION_MARGIN = 0.01
    assert "better than the active version's by at least 0.010" in activation_rule()
    assert decide(shop, tie)["outcome"] == "kept_inactive"


def test_a_better_version_is_activated_and_rollback_returns_to_the_previous(shop, settings):
    settings.OUTFITS_ACTIVATION_MARGIN = -1.0  # any version is "better"
    call_command("train", epochs=1, unfreeze_blocks=0)
    newer = ModelVersion.objects.get(is_active=True)
    assert newer != shop and TrainingRun.objects.latest("created_at").outcome == "activated"
    assert model_versions.previous_version() == shop
    assert model_versions.roll_back() == shop
    assert ModelVersion.objects.get(is_active=True) == shop
    assert model_versions.previous_version() == newer


def test_garbage_collection_keeps_the_newest_the_active_and_the_previous(db, settings):
    root = Path(settings.OUTFITS_MODEL_DIR)
    versions = []
    for number in range(6):
        (root / f"v{number}").mkdir(parents=True)
        (root / f"v{number}" / "manifest.json").write_text("{}")
        version = ModelVersion.objects.create(name=f"v{number}", directory=f"v{number}")
        ModelVersion.objects.filter(pk=version.pk).update(
            created_at=timezone.now() + timedelta(minutes=number)
        )
        versions.append(version)
    model_versions.activate(versions[1])  # then the oldest: v0 becomes active, v1 the previous
    model_versions.activate(versions[0])
    (root / ".incomplete-v9-dead").mkdir()  # a run killed while writing
    removed = model_versions.collect_old_versions(keep=2)
    assert sorted(removed) == ["v2", "v3"]
    assert {p.name for p in root.iterdir()} == {"v0", "v1", "v4", "v5"}
    assert set(ModelVersion.objects.values_list("name", flat=True)) == {"v0", "v1", "v4", "v5"}


def test_admin_retrain_form_starts_a_run_whose_page_shows_the_result(
    shop, client, staff, settings, django_capture_on_commit_callbacks
):
    settings.OUTFITS_ACTIVATION_MARGIN = -1.0
    form = client.get(reverse("admin:embeddings_modelversion_retrain")).content.decode()
    assert settings.OUTFITS_PRETRAINED in form and 'name="epochs"' in form
    with django_capture_on_commit_callbacks(execute=True):  # the task is enqueued on commit
        response = client.post(
            reverse("admin:embeddings_modelversion_retrain"),
            {"pretrained": settings.OUTFITS_PRETRAINED, "epochs": 2, "unfrozen_blocks": 0},
        )
    run = TrainingRun.objects.latest("created_at")
    assert response.status_code == 302 and response.url.endswith(f"/trainingrun/{run.pk}/change/")
    run.refresh_from_db()  # the embedded default runs the task in-process
    assert run.status == "succeeded" and run.requested_by == staff
    assert run.options == {"pretrained": settings.OUTFITS_PRETRAINED, "epochs": 2,
                           "unfrozen_blocks": 0}  # fmt: skip
    page = client.get(reverse("admin:embeddings_trainingrun_change", args=[run.pk]))
    html = page.content.decode()
    assert "Validation metrics" in html and f"Active ({shop.name})" in html
    assert html.count('<svg class="run-chart"') == 2 and "Training loss by epoch" in html
    state = client.get(reverse("admin:embeddings_trainingrun_state", args=[run.pk])).json()
    assert state["finished"] and state["status"] == "succeeded" and "FITB cold" in state["html"]
    history = client.get(reverse("admin:embeddings_trainingrun_changelist")).content.decode()
    assert "activated" in history and "staff" in history


def test_admin_refuses_a_second_training_with_the_reason(shop, client, staff, settings):
    running = create_training_run()
    response = client.post(
        reverse("admin:embeddings_modelversion_retrain"),
        {"pretrained": settings.OUTFITS_PRETRAINED, "epochs": 2, "unfrozen_blocks": 0},
        follow=True,
    )
    assert f"Training run {running.pk} is already queued" in response.content.decode()
    assert TrainingRun.objects.filter(status="queued").count() == 1
    response = client.post(
        reverse("admin:embeddings_trainingrun_cancel", args=[running.pk]), follow=True
    )
    assert "cancelled before it started" in response.content.decode()


def test_admin_activates_any_version_and_rolls_back(shop, client, staff, settings):
    settings.OUTFITS_ACTIVATION_MARGIN = 1.0
    call_command("train", epochs=1, unfreeze_blocks=0)
    kept = ModelVersion.objects.get(is_active=False)
    changelist = client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert f'value="{kept.pk}">Activate</button>' in changelist
    client.post(reverse("admin:embeddings_modelversion_activate"), {"version": kept.pk})
    assert ModelVersion.objects.get(is_active=True) == kept
    changelist = client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert f"Roll back to {shop.name}" in changelist
    client.post(reverse("admin:embeddings_modelversion_rollback"))
    assert ModelVersion.objects.get(is_active=True) == shop


def test_time_left_follows_the_last_runs_shape_at_this_runs_pace(db):
    def stage(started: float, seconds: float, total: int, marks=None) -> dict:
        return {"started": started, "updated": started + seconds, "done": total,
                "total": total} | ({"marks": marks} if marks else {})  # fmt: skip

    # The last run: 8 head-only epochs of 1 s, then 2 epochs through the tuned block of 10 s.
    epochs = [1, 2, 3, 4, 5, 6, 7, 8, 18, 28]
    TrainingRun.objects.create(
        status="succeeded",
        finished_at=timezone.now(),
        stages={
            "training compatibility head": stage(100, 28, 10, epochs),
            "evaluating": stage(128, 2, 1),
            "indexing": stage(130, 3, 280),
        },
    )
    # This run, on a machine twice as busy, has done the 8 quick epochs in 16 s.
    training = stage(0, 16, 10) | {"done": 8}
    run = TrainingRun.objects.create(
        status="running",
        stage="training compatibility head",
        stages={"training compatibility head": training},
    )
    # The tuned epochs' 20 s and the later stages' 5 s, each at twice the time: not the
    # 4 s a straight line from the quick epochs gives, nor the last run's own 12 s + 5 s.
    assert seconds_left(run) == pytest.approx(2 * 20 + 2 * 5)
    run.stages = {"training compatibility head": stage(0, 16, 10) | {"done": 5}}
    run.stages["training compatibility head"]["updated"] = 10.0  # 5 epochs in 10 s
    assert seconds_left(run) == pytest.approx(2 * 23 + 2 * 5)


def test_a_run_trains_on_stylists_verdicts_and_its_page_compares_without_them(
    shop, client, staff, settings, django_capture_on_commit_callbacks
):
    from catalog.models import Product
    from outfits.verdicts import record_verdict

    tops, bottoms = (
        list(Product.objects.filter(category__name=name).values_list("sku", flat=True)[:3])
        for name in ("Tops", "Bottoms")
    )
    record_verdict(tops[0], bottoms[0], "good", given_by=staff)
    record_verdict(tops[1], bottoms[1], "bad", given_by=staff)
    record_verdict(tops[2], bottoms[2], "bad", given_by=staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:embeddings_modelversion_retrain"),
            {"pretrained": settings.OUTFITS_PRETRAINED, "epochs": 2, "unfrozen_blocks": 0},
        )
    run = TrainingRun.objects.latest("created_at")
    assert run.status == "succeeded"
    assert (run.metrics["verdicts_good"], run.metrics["verdicts_bad"]) == (1, 2)
    assert run.metrics["fitb_without_verdicts"] is not None
    html = client.get(reverse("admin:embeddings_trainingrun_change", args=[run.pk])).content
    assert b"Trained on 1 good pair (extra positives) and 2 bad pairs" in html
    assert b"Without" in html


def test_the_training_seed_is_a_setting_and_goes_into_the_options(settings):
    from embeddings.training import training_options

    assert training_options().seed == 0
    settings.OUTFITS_TRAINING_SEED = 7
    assert training_options(epochs=3).seed == 7


def test_the_held_out_share_is_a_setting_and_goes_into_the_options(settings):
    from embeddings.training import training_options

    assert training_options().validation_fraction == 0.15
    settings.OUTFITS_VALIDATION_FRACTION = 0.05
    assert training_options().validation_fraction == 0.05


def test_a_held_out_share_outside_zero_to_one_stops_the_site_saying_what_it_is():
    result = subprocess.run(
        [sys.executable, "-c", "import outfits.settings"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "OUTFITS_VALIDATION_FRACTION": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "OUTFITS_VALIDATION_FRACTION is the share of outfits a training holds out" in (
        result.stderr
    )
