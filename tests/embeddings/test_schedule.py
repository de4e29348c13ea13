"""A scheduled retrain with Celery beat: off by default, on with OUTFITS_RETRAIN_CRONTAB, and
skipped (not queued twice) while a run holds the training lock."""

import json
import os
import subprocess
import sys

from embeddings.models import TrainingRun
from embeddings.tasks import scheduled_retrain
from embeddings.training_runs import create_training_run
from tests.support import ROOT

SHOW_SCHEDULE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps({k: str(v['schedule']) for k, v in settings.CELERY_BEAT_SCHEDULE.items()}))"
)


def beat_schedule(**env: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", SHOW_SCHEDULE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "outfits.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_retrain_schedule_is_off_by_default_and_follows_the_crontab():
    assert "scheduled-retrain" not in beat_schedule(OUTFITS_RETRAIN_CRONTAB="")
    schedule = beat_schedule(OUTFITS_RETRAIN_CRONTAB="30 3 1 6 0")
    assert schedule["scheduled-retrain"] == "<crontab: 30 3 1 6 0 (m/h/dM/MY/d)>"
    assert "fail-stale-training-runs" in schedule


def test_a_malformed_crontab_is_refused_with_its_format():
    result = subprocess.run(
        [sys.executable, "-c", SHOW_SCHEDULE],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "outfits.settings",
            "OUTFITS_RETRAIN_CRONTAB": "every sunday",
        },  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "OUTFITS_RETRAIN_CRONTAB='every sunday' needs five fields" in result.stderr


def test_a_scheduled_retrain_is_skipped_while_one_runs(db):
    running = create_training_run()
    assert scheduled_retrain() is None
    assert list(TrainingRun.objects.all()) == [running]
