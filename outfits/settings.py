"""Settings for the outfit-matching site: every value comes from the environment, with an
embedded default (SQLite, in-process Celery, the offline backbone, files under ./var/)."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """This install's own random key: made on first use, kept (readable by its owner only) for
    every later process, the web server's and its workers' alike."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # atomic: a key another process made first is kept
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


VAR_DIR = Path(os.environ.get("OUTFITS_VAR_DIR", BASE_DIR / "var")).resolve()

DEBUG = env_bool("DJANGO_DEBUG", False)
# Production rules (a secret key of its own, HTTPS only, HSTS, media left to the web server)
# apply with DEBUG off on a database of the site's own (DATABASE_URL set). The embedded default,
# SQLite under var/ (`make demo`, a laptop), is a local install: it keeps a random key of its
# own in var/. OUTFITS_PRODUCTION=true|false overrides the guess.
PRODUCTION = not DEBUG and env_bool("OUTFITS_PRODUCTION", bool(os.environ.get("DATABASE_URL")))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and PRODUCTION:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. In production (DEBUG off, and DATABASE_URL set or "
        "OUTFITS_PRODUCTION=true) the site needs a secret key of its own, the same in every web "
        "and worker process: set "
        "DJANGO_SECRET_KEY to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`. (A local install on "
        "the embedded SQLite database, without DATABASE_URL, makes one and keeps it in var/.)"
    )
if not SECRET_KEY:
    SECRET_KEY = local_secret_key(VAR_DIR / "secret-key.txt")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS: on by default in production (`manage.py check --deploy` passes with the README's
# production settings). Behind a proxy that terminates TLS, name the header it sets, e.g.
# DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https, or every request redirects. ---
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = int(
    os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600 if PRODUCTION else 0))
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Consent to the browsers' preload list (hard to undo, for the whole domain): the operator's
# decision, so off unless set.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "DJANGO_SECURE_PROXY_SSL_HEADER needs the header's META name and the value that means "
        "HTTPS, separated by a comma, e.g. HTTP_X_FORWARDED_PROTO,https"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
# Reverse proxies in front that append the client's address to X-Forwarded-For (0: none, the
# client is REMOTE_ADDR); failed logins are counted per client address.
OUTFITS_TRUSTED_PROXIES = int(os.environ.get("OUTFITS_TRUSTED_PROXIES", "0"))

# --- Logins (admin page, HTTP Basic): after this many failures within the lockout time, a
# username, or a client address, is refused for the rest of it; 0 turns a limit off. ---
OUTFITS_LOGIN_FAILURES_PER_USERNAME = int(
    os.environ.get("OUTFITS_LOGIN_FAILURES_PER_USERNAME", "5")
)
OUTFITS_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("OUTFITS_LOGIN_FAILURES_PER_ADDRESS", "20"))
OUTFITS_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("OUTFITS_LOGIN_LOCKOUT_SECONDS", "900"))
AUTHENTICATION_BACKENDS = ["outfits.login_throttle.ThrottledModelBackend"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "catalog",
    "outfits",
    "embeddings",
]

MIDDLEWARE = [
    "outfits.metrics.MetricsMiddleware",  # first: it times the whole answer
    "django.middleware.security.SecurityMiddleware",
    "outfits.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "outfits.api.cors.ApiCorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "outfits.urls"
WSGI_APPLICATION = "outfits.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:  # the embedded default: SQLite under var/
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
# --- When PostgreSQL is slow or gone: no request waits for ever (see outfits.database). A
# connection attempt gives up after OUTFITS_DB_CONNECT_TIMEOUT seconds (libpq's minimum is 2),
# in every process. Web processes' statements are cancelled after
# OUTFITS_DB_STATEMENT_TIMEOUT_MS (0: never), under gunicorn's 30 s worker timeout, so a stuck
# query ends as a 503 rather than a killed worker; commands and Celery workers (imports,
# training, migrations: statements of minutes on a large catalog) get none. ---
OUTFITS_DB_CONNECT_TIMEOUT = int(os.environ.get("OUTFITS_DB_CONNECT_TIMEOUT", "5"))
OUTFITS_DB_STATEMENT_TIMEOUT_MS = int(os.environ.get("OUTFITS_DB_STATEMENT_TIMEOUT_MS", "20000"))
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = OUTFITS_DB_CONNECT_TIMEOUT
# A view failing on the database answers 503 (the API's JSON error under /api/).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"),
    "outfits.database.DatabaseUnavailableMiddleware",
)
# Load balancers' probes (/healthz, /readyz) and Prometheus (/metrics, with its token) on the
# private network answer over plain HTTP too.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The Docker image collects them into itself (/app/staticfiles), not the shared volume, so an
# upgraded image serves its own.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("OUTFITS_MEDIA_ROOT", VAR_DIR / "media"))
# Django serves uploaded images itself in a local install; in production the web server in front
# should (set OUTFITS_SERVE_MEDIA=true to have Django do it there too, e.g. with no proxy).
OUTFITS_SERVE_MEDIA = env_bool("OUTFITS_SERVE_MEDIA", not PRODUCTION)
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["outfits.api.renderers.FastJSONRenderer"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "outfits.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Outfit matcher storefront API",
    "DESCRIPTION": "What goes well with what, for storefronts: matches per product, complete "
    "outfits, matches for a shopper's photo, click attribution. Authenticate with an API key "
    "from the admin: `Authorization: Api-Key <key>`. Errors share one shape: "
    '`{"error": {"code", "message", "details"?}}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components: an upload is `format: binary` (a file part a
    # schema-driven client sends as a file), not the `uri` a response shows for it.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# /metrics (Prometheus): with a token, scrapers send `Authorization: Bearer <token>`; without
# one, only requests from this machine are answered.
OUTFITS_METRICS_TOKEN = os.environ.get("OUTFITS_METRICS_TOKEN", "")
# Requests per minute of a storefront API key that sets none of its own; counted in the cache.
OUTFITS_API_REQUESTS_PER_MINUTE = int(os.environ.get("OUTFITS_API_REQUESTS_PER_MINUTE", "600"))
# Events (POST /api/v1/events/) count only for a signed rec_id issued at most this long ago.
OUTFITS_REC_ID_MAX_AGE_DAYS = float(os.environ.get("OUTFITS_REC_ID_MAX_AGE_DAYS", "30"))
# The largest photo a shopper may send (the /match/ page, POST /api/v1/matches/by-image/): a
# larger one is refused (413) before its body is read.
OUTFITS_PHOTO_MAX_BYTES = int(os.environ.get("OUTFITS_PHOTO_MAX_BYTES", str(10 << 20)))
# A web process loads the photo model (torch, the backbone) with its first photo, in the
# background: that photo waits this long for it, then is told to try again in a few seconds.
OUTFITS_PHOTO_WARMUP_WAIT_SECONDS = float(os.environ.get("OUTFITS_PHOTO_WARMUP_WAIT_SECONDS", "15"))
# The shared cache (API rate limits, failed logins): Redis when REDIS_URL is set, else this
# process's memory. Redis answers within a millisecond: one that has not connected or answered
# within OUTFITS_REDIS_TIMEOUT_MS is down or frozen (redis-py would wait for ever), and what
# counts in it counts in process memory instead, Redis skipped for OUTFITS_REDIS_RETRY_SECONDS
# after each failure (outfits/shared_cache.py).
REDIS_URL = os.environ.get("REDIS_URL", "")
OUTFITS_REDIS_TIMEOUT_MS = int(os.environ.get("OUTFITS_REDIS_TIMEOUT_MS", "200"))
OUTFITS_REDIS_RETRY_SECONDS = float(os.environ.get("OUTFITS_REDIS_RETRY_SECONDS", "3"))
if OUTFITS_REDIS_TIMEOUT_MS <= 0:  # 0 would make every socket non-blocking: nothing works
    raise ImproperlyConfigured("OUTFITS_REDIS_TIMEOUT_MS must be a positive number of ms.")
REDIS_OPTIONS = {
    "socket_connect_timeout": OUTFITS_REDIS_TIMEOUT_MS / 1000,
    "socket_timeout": OUTFITS_REDIS_TIMEOUT_MS / 1000,
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": REDIS_OPTIONS,
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Catalog import ---
# Absolute image paths in an import must lie under one of these folders (server-side files).
OUTFITS_IMPORT_ROOTS = [Path(p) for p in env_list("OUTFITS_IMPORT_ROOTS", str(VAR_DIR / "imports"))]
# Image URLs resolving to private addresses are refused unless their network is listed here
# (e.g. an in-house image server): CIDRs, comma-separated.
OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS = env_list("OUTFITS_IMAGE_FETCH_ALLOWED_NETWORKS", "")
# Seconds for the whole fetch of an image URL (redirects, retries and every byte included).
OUTFITS_IMAGE_FETCH_TIMEOUT = float(os.environ.get("OUTFITS_IMAGE_FETCH_TIMEOUT", "10"))
OUTFITS_IMPORT_CHUNK_ROWS = int(os.environ.get("OUTFITS_IMPORT_CHUNK_ROWS", "1000"))
# Uploaded import files (CSVs, image zips): private, never under MEDIA_ROOT (no URL serves
# them); the admin streams them to staff who may view import jobs.
OUTFITS_IMPORT_FILES_DIR = Path(
    os.environ.get("OUTFITS_IMPORT_FILES_DIR", VAR_DIR / "private" / "imports")
)
# An uploaded images zip is refused whole, before anything is extracted, over any of these:
# entries, expanded bytes, and expansion ratio (whole archive, and any entry over 1 MB;
# photos hardly compress, a zip bomb expands hundreds of times).
OUTFITS_IMPORT_ZIP_MAX_ENTRIES = int(os.environ.get("OUTFITS_IMPORT_ZIP_MAX_ENTRIES", "100000"))
OUTFITS_IMPORT_ZIP_MAX_BYTES = int(os.environ.get("OUTFITS_IMPORT_ZIP_MAX_BYTES", str(4 << 30)))
OUTFITS_IMPORT_ZIP_MAX_RATIO = float(os.environ.get("OUTFITS_IMPORT_ZIP_MAX_RATIO", "100"))

# --- Celery: a real broker when CELERY_BROKER_URL is set, in-process tasks otherwise. ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://localhost/"  # a host named: kombu warns of none
# Redis (and SQS) hand a message nobody acknowledged to another worker after this many
# seconds; tasks acknowledge when done (acks_late), so it must exceed the longest task's time
# limit (run_import: 6 h 5 min), or a long import is delivered to a second worker while the
# first still runs it (that one is refused by the job's claim, but wastes a worker slot).
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 7 * 3600}
if CELERY_BROKER_URL.startswith(("folder://", "filesystem://")):
    # A broker in a folder: what `make demo` runs its worker on, with no broker server
    # (`folder://`: outfits/folder_broker.py, kombu's filesystem transport, files written whole).
    from outfits.folder_broker import transport_options

    _broker_folder = VAR_DIR / "broker"
    _broker_folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS |= transport_options(_broker_folder)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
OUTFITS_TRAINING_QUEUE = os.environ.get("OUTFITS_TRAINING_QUEUE", "training")
CELERY_TASK_DEFAULT_QUEUE = "default"
# The stale-run check and the scheduled retrain: a queue of their own, not stuck behind a
# training (serve it from a worker process that does not train).
OUTFITS_MAINTENANCE_QUEUE = os.environ.get("OUTFITS_MAINTENANCE_QUEUE", CELERY_TASK_DEFAULT_QUEUE)
# New and changed products refreshed into the active version (embeddings.version_refresh):
# on each catalog change (an import's end, an admin save), at most one refresh per
# OUTFITS_REFRESH_DELAY_SECONDS, on a queue of their own (a worker serving it besides
# `training` keeps refreshes going while a training runs).
OUTFITS_REFRESH_ON_CHANGE = env_bool("OUTFITS_REFRESH_ON_CHANGE", True)
OUTFITS_REFRESH_QUEUE = os.environ.get("OUTFITS_REFRESH_QUEUE", "refresh")
OUTFITS_REFRESH_DELAY_SECONDS = float(os.environ.get("OUTFITS_REFRESH_DELAY_SECONDS", "5"))
# A refresh's threads (embeddings.engine.threads): one leaves the other cores to web requests, and
# took 1000 new arrivals into a 100k catalog in less time than two beside them.
OUTFITS_REFRESH_THREADS = int(os.environ.get("OUTFITS_REFRESH_THREADS", "1"))
# The admin's exports of every product's matches (outfits.tasks): minutes of work each.
OUTFITS_EXPORT_QUEUE = os.environ.get("OUTFITS_EXPORT_QUEUE", CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_ROUTES = {
    "outfits.tasks.export_matches_file": {"queue": OUTFITS_EXPORT_QUEUE},
    "embeddings.tasks.refresh_version": {"queue": OUTFITS_REFRESH_QUEUE},
    "embeddings.tasks.fail_stale_training_runs": {"queue": OUTFITS_MAINTENANCE_QUEUE},
    "embeddings.tasks.scheduled_retrain": {"queue": OUTFITS_MAINTENANCE_QUEUE},
    "embeddings.tasks.*": {"queue": OUTFITS_TRAINING_QUEUE},
}
# Beat's crontabs (OUTFITS_RETRAIN_CRONTAB) are in the site's time zone, not UTC.
CELERY_TIMEZONE = TIME_ZONE

# --- The compatibility model ---
# The backbone is any open_clip model: a built-in name with a pretrained tag or checkpoint file,
# or an `hf-hub:` model. The embedded default is the project's own offline backbone, which
# `manage.py pretrain_backbone` builds from catalog images and titles.
OUTFITS_BACKBONE = os.environ.get("OUTFITS_BACKBONE", "outfits-tiny")
OUTFITS_PRETRAINED = os.environ.get(
    "OUTFITS_PRETRAINED", str(VAR_DIR / "backbones" / "outfits-tiny.safetensors")
)
OUTFITS_MODEL_DIR = Path(os.environ.get("OUTFITS_MODEL_DIR", VAR_DIR / "models"))
OUTFITS_TRAINING_EPOCHS = int(os.environ.get("OUTFITS_TRAINING_EPOCHS", "30"))
# The training's random seed (negatives, initialisation; not the held-out outfits, which a
# hash of their items picks): a retraining with another one shows how much is chance.
OUTFITS_TRAINING_SEED = int(os.environ.get("OUTFITS_TRAINING_SEED", "0"))
# The compatibility head's learning rate (AdamW); a run whose loss turns NaN stops and says so.
OUTFITS_TRAINING_LEARNING_RATE = float(os.environ.get("OUTFITS_TRAINING_LEARNING_RATE", "2e-3"))
# Last image-tower blocks fine-tuned with the head, in its last epochs (0: the backbone stays
# frozen; a ViT backbone is needed otherwise).
OUTFITS_UNFROZEN_BLOCKS = int(os.environ.get("OUTFITS_UNFROZEN_BLOCKS", "1"))
# Of the training's epochs, the last this many tune those blocks (the others train the head
# alone, on the precomputed image vectors). 16 of 30: docs/model.md measures 8, 16 and 30.
OUTFITS_TUNED_EPOCHS = int(os.environ.get("OUTFITS_TUNED_EPOCHS", "16"))
# The score a training serves: type_aware (pairs), outfit_transformer (an outfit-level model
# reads outfits of two or more items whole) or auto (trains both, serves the outfit-level
# model unless the pairs are better on held-out new arrivals or known items beyond noise).
OUTFITS_SCORER = os.environ.get("OUTFITS_SCORER", "auto")
# The outfit-level model's epochs: 10, where new arrivals do best (docs/model.md measures 5, 10,
# 20 and 40: beyond 10 it fits the training outfits and loses new arrivals).
OUTFITS_OUTFIT_MODEL_EPOCHS = int(os.environ.get("OUTFITS_OUTFIT_MODEL_EPOCHS", "10"))
# Blend of curated co-occurrence into scores: cosine + weight · log(1 + outfits together).
# "auto": each training learns it on its held-out outfits, beside the weights of the signals
# read where an outfit is read whole (embeddings/engine/blend.py); a number: direct alone.
_cooccurrence_weight = os.environ.get("OUTFITS_COOCCURRENCE_WEIGHT", "auto")
OUTFITS_COOCCURRENCE_WEIGHT = (
    None if _cooccurrence_weight == "auto" else float(_cooccurrence_weight)
)
# The hub penalty: every query less this times its category's centre (the mean query of the
# outfits holding it), so items that score high for any outfit stop crowding new arrivals
# out of a family's best (docs/model.md: Recall@10 of new arrivals; 0 turns it off).
OUTFITS_HUB_PENALTY = float(os.environ.get("OUTFITS_HUB_PENALTY", "0.5"))
# The share of the outfits a training holds out (picked by a hash of their items) to learn the
# blend's weights, choose the scorer and report its figures; the rest train the models.
OUTFITS_VALIDATION_FRACTION = float(os.environ.get("OUTFITS_VALIDATION_FRACTION", "0.15"))
if not 0 < OUTFITS_VALIDATION_FRACTION < 1:
    raise ImproperlyConfigured(
        f"OUTFITS_VALIDATION_FRACTION is the share of outfits a training holds out, between 0 "
        f"and 1 (e.g. 0.15), not {OUTFITS_VALIDATION_FRACTION}."
    )
OUTFITS_MATCHES_PER_CATEGORY = int(os.environ.get("OUTFITS_MATCHES_PER_CATEGORY", "4"))
# Diversity of a row of matches (maximal marginal relevance): 0 ranks by score alone; higher
# values push near-duplicates (the same shirt in three colours) down the row, and show one
# product of each title and colour.
OUTFITS_MATCH_DIVERSITY = float(os.environ.get("OUTFITS_MATCH_DIVERSITY", "0.3"))
# A storefront's `boost=` (new arrivals, in stock, an attribute's value) adds this to a
# product's score per boost it earns: a tenth of the score's range lifts a good match a few
# places without raising a poor one over the best.
OUTFITS_MATCH_BOOST = float(os.environ.get("OUTFITS_MATCH_BOOST", "0.1"))
# A stylist's bad pair (a verdict on a product page) counts this many times an outfit's
# triplet in training: verdicts are few and deliberate.
OUTFITS_BAD_PAIR_WEIGHT = float(os.environ.get("OUTFITS_BAD_PAIR_WEIGHT", "2.0"))
# The head's negatives drawn as often as the outfits wear each item, not every catalog item
# alike (docs/model.md: an item in no outfit would otherwise only ever be a negative, and new
# arrivals that look like one would inherit its low scores). 0: the whole catalog, as before.
OUTFITS_NEGATIVES_AS_WORN = env_bool("OUTFITS_NEGATIVES_AS_WORN", True)
# An A/B test calls no winner before each arm has this many impressions.
OUTFITS_EXPERIMENT_MIN_IMPRESSIONS = int(
    os.environ.get("OUTFITS_EXPERIMENT_MIN_IMPRESSIONS", "1000")
)
# A product created this many days ago or less is a new arrival (`boost=new_arrivals`).
OUTFITS_NEW_ARRIVAL_DAYS = int(os.environ.get("OUTFITS_NEW_ARRIVAL_DAYS", "30"))
# How many of each complementary category's best items a model version computes ahead for
# every item (matches rows up to (depth - 6) / 2 long read them); 0: every answer searches.
OUTFITS_COMPUTED_NEIGHBOURS = int(os.environ.get("OUTFITS_COMPUTED_NEIGHBOURS", "24"))
# A change of up to this many products is loaded by the request that first sees it (a few ms);
# a larger one (a big import) is loaded beside, in a thread of each web process, while its
# requests keep answering from the previous snapshot: they never wait for a reload.
OUTFITS_SNAPSHOT_INLINE_PRODUCTS = int(os.environ.get("OUTFITS_SNAPSHOT_INLINE_PRODUCTS", "2000"))
# A web process serving a model version of more items than this loads the next one (another
# activation, a refresh) in a thread beside it, answering from the one it has meanwhile; a
# smaller one is loaded by the request that notices it.
OUTFITS_MODEL_INLINE_ITEMS = int(os.environ.get("OUTFITS_MODEL_INLINE_ITEMS", "20000"))
# FAISS threads of a process that serves matches (one query at a time: 1 is fastest).
OUTFITS_SERVING_FAISS_THREADS = int(os.environ.get("OUTFITS_SERVING_FAISS_THREADS", "1"))

# Celery workers (imports, training) run at this niceness (0-19; 0: as web workers), so web
# requests get the cores first on a machine the two share (outfits.cpu_priority).
OUTFITS_BACKGROUND_NICENESS = int(os.environ.get("OUTFITS_BACKGROUND_NICENESS", "10"))
# A worker run with this on (Linux) is scheduled only on CPU time nothing else wants
# (SCHED_IDLE): for the refresh queue's own worker, whose short jobs land while shoppers are
# served. Not for training: under a saturating load it would get nothing at all.
OUTFITS_WORKER_IDLE_PRIORITY = env_bool("OUTFITS_WORKER_IDLE_PRIORITY", False)

# --- Retraining ---
# A run's heavy work fans out over Celery workers when this names a queue: its new images in
# chunks of OUTFITS_EMBEDDING_CHUNK, and the new version's computed neighbours in chunks of
# OUTFITS_NEIGHBOURS_CHUNK items, a task each, to the workers of that queue (start them with
# `celery -A outfits worker -Q <queue>` on machines sharing the var and media folders).
# Empty: the training worker does it all itself.
OUTFITS_FANOUT_QUEUE = os.environ.get("OUTFITS_FANOUT_QUEUE", "")
OUTFITS_EMBEDDING_CHUNK = int(os.environ.get("OUTFITS_EMBEDDING_CHUNK", "2000"))
OUTFITS_NEIGHBOURS_CHUNK = int(os.environ.get("OUTFITS_NEIGHBOURS_CHUNK", "20000"))
# Where a process embeds images: auto (a CUDA GPU when it sees one: give GPU machines the
# fan-out queue), cpu or cuda (an error without one).
OUTFITS_EMBEDDING_DEVICE = os.environ.get("OUTFITS_EMBEDDING_DEVICE", "auto")
# A run gives up (failed, nothing activated) when no chunk has finished for this long.
OUTFITS_FANOUT_STALL_SECONDS = float(os.environ.get("OUTFITS_FANOUT_STALL_SECONDS", "900"))
# A new version is activated when its held-out FITB beats the active version's on the same
# questions by at least this much (negative: also when slightly worse; staff can always
# activate by hand).
OUTFITS_ACTIVATION_MARGIN = float(os.environ.get("OUTFITS_ACTIVATION_MARGIN", "0.0"))
# Model versions kept on disk; older ones are deleted after each training, never the active
# one or the one before it (rollback).
OUTFITS_KEEP_MODEL_VERSIONS = int(os.environ.get("OUTFITS_KEEP_MODEL_VERSIONS", "5"))
# A running training stamps its row this often; a run silent for STALE seconds lost its
# worker (killed, machine gone) and is marked failed, which releases the training lock.
OUTFITS_TRAINING_HEARTBEAT_SECONDS = float(
    os.environ.get("OUTFITS_TRAINING_HEARTBEAT_SECONDS", "5")
)
OUTFITS_TRAINING_STALE_SECONDS = float(os.environ.get("OUTFITS_TRAINING_STALE_SECONDS", "120"))
# A queued run no worker started within this long (its task lost, no worker on the training
# queue) is failed, which releases the lock; its task expires from the broker then too.
OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS = float(
    os.environ.get("OUTFITS_TRAINING_QUEUED_TIMEOUT_SECONDS", "1800")
)
# A run fails at its start, before any compute, when OUTFITS_MODEL_DIR cannot be written or
# has less than this free (MB).
OUTFITS_MODEL_DIR_MIN_FREE_MB = int(os.environ.get("OUTFITS_MODEL_DIR_MIN_FREE_MB", "1024"))
# A scheduled retrain with Celery beat (`celery -A outfits beat`): a crontab of five fields,
# e.g. "0 3 * * 0" for Sundays at 03:00. Empty (the default): no scheduled retrain.
OUTFITS_RETRAIN_CRONTAB = os.environ.get("OUTFITS_RETRAIN_CRONTAB", "").strip()
CELERY_BEAT_SCHEDULE = {
    "fail-stale-training-runs": {
        "task": "embeddings.tasks.fail_stale_training_runs",
        "schedule": 60.0,
        "options": {"expires": 55.0},  # the next check replaces one not run in time
    },
    "interrupt-stale-imports": {"task": "catalog.tasks.interrupt_stale_imports", "schedule": 60.0},
}
# A running import stamps its row this often; one silent for STALE seconds lost its worker and
# is marked interrupted by the beat task above (and by the admin's import pages) to be resumed.
OUTFITS_IMPORT_HEARTBEAT_SECONDS = float(os.environ.get("OUTFITS_IMPORT_HEARTBEAT_SECONDS", "5"))
OUTFITS_IMPORT_STALE_SECONDS = float(os.environ.get("OUTFITS_IMPORT_STALE_SECONDS", "120"))
if OUTFITS_RETRAIN_CRONTAB:
    from celery.schedules import crontab
    from django.core.exceptions import ImproperlyConfigured

    if len(OUTFITS_RETRAIN_CRONTAB.split()) != 5:
        raise ImproperlyConfigured(
            f"OUTFITS_RETRAIN_CRONTAB={OUTFITS_RETRAIN_CRONTAB!r} needs five fields: minute hour "
            "day-of-month month day-of-week, e.g. '0 3 * * 0' for Sundays at 03:00"
        )
    _minute, _hour, _day_of_month, _month, _day_of_week = OUTFITS_RETRAIN_CRONTAB.split()
    CELERY_BEAT_SCHEDULE["scheduled-retrain"] = {
        "task": "embeddings.tasks.scheduled_retrain",
        "schedule": crontab(_minute, _hour, _day_of_week, _day_of_month, _month),
        "options": {"expires": 3600.0},  # not hours late, after the workers were down
    }

# OUTFITS_LOG_FORMAT: plain (a line of text) or json (one JSON object per line).
OUTFITS_LOG_FORMAT = os.environ.get("OUTFITS_LOG_FORMAT", "plain").strip().lower()
if OUTFITS_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(
        f"OUTFITS_LOG_FORMAT={OUTFITS_LOG_FORMAT!r}: use plain (lines of text) or json (one "
        "JSON object per line)"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "outfits.log_format.JsonFormatter"},
    },
    "filters": {"quiet_libraries": {"()": "outfits.log_format.QuietLibraries"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": OUTFITS_LOG_FORMAT,
            "filters": ["quiet_libraries"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # faiss announces at INFO which CPU build it picked, on every start.
    "loggers": {"faiss.loader": {"level": "WARNING"}},
}
