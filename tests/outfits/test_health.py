"""/healthz says the process answers (no database); /readyz checks what serving needs, each
check named with its outcome, detail and time."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)  # the checks run in threads of their own


def test_healthz_answers_without_asking_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_not_ready_without_an_active_model(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    checks = body["checks"]
    assert set(checks) == {"database", "cache", "broker", "model"}
    assert checks["database"]["ok"] and checks["cache"]["ok"] and checks["broker"]["ok"]
    assert not checks["model"]["ok"] and "no model version is active" in checks["model"]["detail"]


def test_readyz_is_ready_with_the_model_loaded(client, handmade_shop):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert all(check["ok"] and check["ms"] >= 0 for check in checks.values())
    assert checks["model"]["detail"] == handmade_shop.version.name
