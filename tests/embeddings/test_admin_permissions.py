"""The model admin's own pages (Retrain, Activate, Roll back, a run's page, its state, Cancel)
check the model permission of what they do, not staff status alone; bad input gets a 400."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from embeddings.models import ModelVersion, TrainingRun


def staff_user(name: str, *codenames: str):
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def versions(db) -> tuple[ModelVersion, ModelVersion]:
    """An active version and the one served before it (what Roll back returns to)."""
    served_before = ModelVersion.objects.create(
        name="v1", directory="v1", backbone="tiny", activated_at=timezone.now()
    )
    active = ModelVersion.objects.create(
        name="v2", directory="v2", backbone="tiny", is_active=True, activated_at=timezone.now()
    )
    return active, served_before


@pytest.fixture
def running(db) -> TrainingRun:
    return TrainingRun.objects.create(status="running", heartbeat_at=timezone.now())


def active_name() -> str:
    return ModelVersion.objects.get(is_active=True).name


def test_staff_without_permissions_get_403_from_every_model_page(client, versions, running):
    client.force_login(staff_user("nobody"))
    _, served_before = versions
    for url in [
        reverse("admin:embeddings_modelversion_retrain"),
        reverse("admin:embeddings_trainingrun_change", args=[running.pk]),
        reverse("admin:embeddings_trainingrun_state", args=[running.pk]),
        reverse("admin:embeddings_trainingrun_changelist"),
    ]:
        assert client.get(url).status_code == 403, url
    posts = [
        (reverse("admin:embeddings_modelversion_retrain"), {"epochs": 1}),
        (reverse("admin:embeddings_modelversion_activate"), {"version": served_before.pk}),
        (reverse("admin:embeddings_modelversion_rollback"), {}),
        (reverse("admin:embeddings_trainingrun_cancel", args=[running.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert active_name() == "v2"
    running.refresh_from_db()
    assert not running.cancel_requested and TrainingRun.objects.count() == 1


def test_a_viewer_follows_a_run_but_may_not_cancel_it(client, running):
    client.force_login(staff_user("viewer", "view_trainingrun"))
    page = client.get(reverse("admin:embeddings_trainingrun_change", args=[running.pk]))
    assert page.status_code == 200 and 'id="cancel-form"' not in page.content.decode()
    state = client.get(reverse("admin:embeddings_trainingrun_state", args=[running.pk]))
    assert state.status_code == 200 and state.json()["status"] == "running"
    cancel = client.post(reverse("admin:embeddings_trainingrun_cancel", args=[running.pk]))
    assert cancel.status_code == 403


def test_the_add_training_permission_starts_and_cancels_runs(client, running):
    client.force_login(staff_user("trainer", "add_trainingrun", "view_trainingrun"))
    assert client.get(reverse("admin:embeddings_modelversion_retrain")).status_code == 200
    page = client.get(reverse("admin:embeddings_trainingrun_change", args=[running.pk]))
    assert 'id="cancel-form"' in page.content.decode()
    client.post(reverse("admin:embeddings_trainingrun_cancel", args=[running.pk]))
    running.refresh_from_db()
    assert running.cancel_requested


def test_the_change_permission_activates_and_rolls_back(client, versions):
    active, served_before = versions
    client.force_login(staff_user("viewer", "view_modelversion"))
    changelist = client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert ">Activate</button>" not in changelist and "Roll back" not in changelist
    assert "Retrain" not in changelist
    client.force_login(staff_user("releaser", "view_modelversion", "change_modelversion"))
    changelist = client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert f'value="{served_before.pk}">Activate</button>' in changelist
    assert "Roll back to v1" in changelist
    client.post(reverse("admin:embeddings_modelversion_activate"), {"version": served_before.pk})
    assert active_name() == "v1"
    client.post(reverse("admin:embeddings_modelversion_rollback"))
    assert active_name() == "v2"


@pytest.mark.parametrize("version", ["abc", "", "1.5", "-1"])
def test_activating_a_version_that_is_no_number_is_a_400_that_says_so(client, versions, version):
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    response = client.post(reverse("admin:embeddings_modelversion_activate"), {"version": version})
    assert response.status_code == 400
    assert f"version={version!r} is not a model version's number" in response.content.decode()
    assert active_name() == "v2"
