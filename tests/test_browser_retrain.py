"""In a real browser (Debian's chromium driven by Playwright): staff press Retrain in the
admin, and the run's page follows the worker's progress, without reloading, to the result.
The screenshot is kept in test-artifacts/."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from embeddings.models import ModelVersion, TrainingRun
from tests.support import ARTIFACTS, CHROMIUM, chromium_page

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test)"),
]


def test_staff_press_retrain_and_watch_the_progress_to_the_result(
    site_env, small_catalog, settings, web_server, start_worker
):
    call_command("import_catalog", str(small_catalog.products_csv))
    call_command("import_outfits", str(small_catalog.outfits_csv))
    call_command("train", epochs=2, unfreeze_blocks=0)  # a version to compare against
    active = ModelVersion.objects.get(is_active=True)
    get_user_model().objects.create_superuser("staff", "staff@example.com", "a-long-password")
    start_worker()

    with chromium_page() as page:
        page.goto(f"{web_server}/admin/login/?next=/admin/embeddings/modelversion/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "a-long-password")
        page.click("input[type=submit]")
        page.click("text=Retrain")
        page.fill("#id_epochs", "60")
        page.fill("#id_unfrozen_blocks", "0")
        page.click("text=Start training")

        page.wait_for_selector("#run-state")
        page.evaluate("window.notReloaded = true")
        training_bar = 'progress[data-stage="training compatibility head"]'
        # The bar moves while the worker trains (seen part-way), then the run ends. (Functions:
        # a bare expression is eval'd in the page, which its Content-Security-Policy refuses.)
        page.wait_for_function(
            f"() => {{ const bar = document.querySelector('{training_bar}');"
            " return bar && bar.value > 0 && bar.value < 100; }",
            timeout=180_000,
        )
        page.wait_for_function(
            "() => document.querySelector('#run-status').textContent.trim() === 'Succeeded'",
            timeout=300_000,
        )
        assert page.evaluate("window.notReloaded") is True  # updated in place
        values = page.eval_on_selector_all(
            "progress.stage-progress", "bars => bars.map(b => b.value)"
        )
        assert values and all(value == 100 for value in values)
        assert page.locator("svg.run-chart").count() == 2
        assert (
            page.locator("table.run-metrics thead", has_text=f"Active ({active.name})").count() == 1
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-retrain-run.png"), full_page=True)

    run = TrainingRun.objects.latest("created_at")
    assert run.status == "succeeded" and run.requested_by.username == "staff"
    assert len(run.loss_curve) == 60
