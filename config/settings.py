"""Actboard settings: everything comes from the environment, with defaults that run on a fresh machine.

With no variables set the service uses a SQLite file and an embedded, server-less Celery broker (kombu's
filesystem transport) under ``var/``; production sets ``DATABASE_URL`` (PostgreSQL) and
``CELERY_BROKER_URL`` (Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ACTBOARD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("ACTBOARD_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Local runs only: a fixed key would let anyone forge sessions on a public deployment.
    SECRET_KEY = "insecure-local-only-actboard-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

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
    "leaderboard",
    "worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "leaderboard.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'actboard.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker write to the same file: wait for locks instead of failing at once.
    # WAL lets the web server read while the worker writes, and makes each commit cheap.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The leaderboard's covering indexes (INCLUDE columns) are a PostgreSQL feature; SQLite builds them as
# plain indexes, which is all the embedded default needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Leaderboard rows are cached per process by default; CACHE_URL=redis://... shares them between processes.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "actboard"}
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Celery ----------------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),  # broadcast exchanges; kombu's default is ./control
        "store_processed": False,
    }
else:
    # Above the longest task (one instance batch), so an unacked task is not redelivered while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "7200"))}
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-submissions": {"task": "worker.tasks.reap_stuck_submissions", "schedule": 60.0},
}

# --- Actboard --------------------------------------------------------------------------------------
# Fernet key(s) for API keys at rest; the first encrypts, all decrypt (rotation). Derived from
# SECRET_KEY when unset, so a local run works without extra setup.
ACTBOARD_ENCRYPTION_KEYS = env_list("ACTBOARD_ENCRYPTION_KEYS")
# Endpoint hosts allowed even though they resolve to private/loopback ranges (SSRF rules).
ACTBOARD_ALLOWED_ENDPOINT_HOSTS = env_list("ACTBOARD_ALLOWED_ENDPOINT_HOSTS")
ACTBOARD_ALLOW_PRIVATE_ENDPOINTS = env_bool("ACTBOARD_ALLOW_PRIVATE_ENDPOINTS", False)
ACTBOARD_SUBMISSIONS_PER_DAY = int(os.environ.get("ACTBOARD_SUBMISSIONS_PER_DAY", "10"))
# Work items per Celery batch task. Every boundary between batches drains a lane's calls in flight, and
# nothing is lost by a larger batch (each result is stored as it completes, a batch loads its instances a
# chunk at a time, and its time limits follow its size), so batches are large.
ACTBOARD_BATCH_SIZE = int(os.environ.get("ACTBOARD_BATCH_SIZE", "500"))
# A submission's work runs as up to this many lanes of batches side by side, in separate worker processes,
# at shares of its concurrency (at least 8 each) that sum to it: more lanes take more CPU per submission.
ACTBOARD_WORKER_LANES = int(os.environ.get("ACTBOARD_WORKER_LANES", "2"))
# Seconds without a heartbeat (live batches beat every few seconds) before the reaper resumes a running
# submission, and without a start message reaching a worker before it dispatches a queued one again.
ACTBOARD_HEARTBEAT_TIMEOUT = int(os.environ.get("ACTBOARD_HEARTBEAT_TIMEOUT", "300"))
ACTBOARD_REDISPATCH_AFTER = int(os.environ.get("ACTBOARD_REDISPATCH_AFTER", "120"))
ACTBOARD_ENDPOINT_TIMEOUT = float(os.environ.get("ACTBOARD_ENDPOINT_TIMEOUT", "120"))
ACTBOARD_MAX_CONCURRENCY = int(os.environ.get("ACTBOARD_MAX_CONCURRENCY", "32"))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "leaderboard.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "leaderboard.serializers.Pagination",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Actboard API",
    "DESCRIPTION": "Benchmarks, leaderboards, submissions and splits of Actboard.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from the app itself, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "openai")},
}

# --- Security headers and log-in throttling -------------------------------------------------------
# Every page works under this policy (a browser test loads each kind of page and counts violations):
# no inline script or style anywhere, plotly.js and Swagger UI served by the site itself. Images allow
# data: URIs for Swagger UI's icons. The two style hashes are the <style> elements plotly.js adds: an
# empty one it fills through the CSSOM, and maplibre's stylesheet (tests/test_hardening_web.py checks
# the hash against the bundled plotly.js, so an upgrade that changes it fails there).
ACTBOARD_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' 'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
AUTHENTICATION_BACKENDS = ["leaderboard.auth.ThrottledModelBackend"]
# Failed password checks allowed per account and per client address before a lock of the same length
# as the counting window; counted in the default cache (share it between processes with CACHE_URL).
ACTBOARD_LOGIN_FAILURES_PER_ACCOUNT = int(os.environ.get("ACTBOARD_LOGIN_FAILURES_PER_ACCOUNT", "5"))
ACTBOARD_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("ACTBOARD_LOGIN_FAILURES_PER_ADDRESS", "20"))
ACTBOARD_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("ACTBOARD_LOGIN_LOCKOUT_SECONDS", "900"))
# Reverse proxies in front of the web server that append the client's address to X-Forwarded-For.
ACTBOARD_TRUSTED_PROXIES = int(os.environ.get("ACTBOARD_TRUSTED_PROXIES", "0"))

if not DEBUG and env_bool("ACTBOARD_SECURE", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
