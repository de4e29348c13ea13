"""Test settings: the site's settings on the real PostgreSQL when it runs here (as on CI and in
production), so worker processes and threads share the test database with the test; else a
SQLite file (not in memory: concurrent connections wait for locks instead of failing)."""

import os
import socket

# The tests' own secret key, and local-install rules (plain HTTP on 127.0.0.1, media served by
# Django) even on PostgreSQL. Set in the environment, so the site's processes the tests start
# (manage.py, web servers, workers on outfits.settings) share them with the tests.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + "not-secret-" * 5)
os.environ.setdefault("OUTFITS_PRODUCTION", "false")

from outfits.settings import *  # noqa: E402, F403
from outfits.settings import DATABASES, REDIS_OPTIONS, VAR_DIR  # noqa: E402

TEST_DATABASE_URL = os.environ.get(
    "OUTFITS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_reachable(url: str) -> bool:
    import dj_database_url

    config = dj_database_url.parse(url)
    try:
        socket.create_connection((config["HOST"], int(config["PORT"] or 5432)), timeout=2).close()
        return True
    except OSError:
        return False


if not os.environ.get("DATABASE_URL") and postgres_reachable(TEST_DATABASE_URL):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(TEST_DATABASE_URL, conn_max_age=0)}
    DATABASES["default"]["TEST"] = {"NAME": f"test_outfits_{os.getpid()}"}
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

# API rate limits are counted in Redis, as in production, when it runs here; each test run
# gets its own key prefix.
if not os.environ.get("REDIS_URL"):
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
        CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/1",
                "KEY_PREFIX": f"test-{os.getpid()}",
                "OPTIONS": REDIS_OPTIONS,
            }
        }
    except OSError:
        pass

# A catalog change does not refresh the active version in-process (a backbone load per import
# after a training): the tests of refreshes turn it on.
OUTFITS_REFRESH_ON_CHANGE = False
