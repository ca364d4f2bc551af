"""Settings, all read from the environment with safe defaults.

Nothing here imports a domain module: settings must load before any app does.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REVIEWAPP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)

# The default key is only good for a laptop: with DEBUG off we refuse to start on it, so a
# production deployment cannot silently sign sessions with a key published in this repo.
INSECURE_DEFAULT_SECRET_KEY = "django-insecure-reviewapp-development-key-do-not-use"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for local work.")
# Django's own criteria for a strong key (security.W009): a short or repetitive key can be
# guessed offline from one signed session cookie, after which anyone can sign in as anyone.
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak: use at least 50 random characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "reviewapp.apps.ReviewappConfig",
    "labeling.apps.LabelingConfig",
    "escalations.apps.EscalationsConfig",
    "evaluation.apps.EvaluationConfig",
    "provisioning.apps.ProvisioningConfig",
    "demo.apps.DemoConfig",
]

MIDDLEWARE = [
    # First: serves `GET /api/v1/actions/{id}?wait=N` with an async view and passes every other
    # request on. A sync middleware outside it would hold a thread for each whole wait.
    "escalations.apis.waiting.ActionWaitMiddleware",
    "reviewapp.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "reviewapp.middleware.SecurityHeadersMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "reviewapp.middleware.CurrentOrganizationMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"
ASGI_APPLICATION = "reviewapp.asgi.application"

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
                "reviewapp.context_processors.organization",
                "reviewapp.context_processors.transcript",
                # The approvals count in the navigation bar (lazy: no query unless shown).
                "escalations.context_processors.inbox",
            ],
        },
    }
]

DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'reviewapp.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_SQLITE_URL),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if "DATABASE_URL" not in os.environ:
    # The embedded default: its file lives in var/, which a fresh clone does not have yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves one developer: WAL lets the in-process jobs read while a
    # request writes, and a busy timeout turns short lock waits into waits, not errors.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that sends nothing on an idle connection
        # (reviewapp/pgbackend/base.py): Django's own is a `SELECT 1` round trip per request.
        DATABASES["default"]["ENGINE"] = "reviewapp.pgbackend"
    # Django's own queries bind parameters client-side and are never prepared. The few
    # hand-written hot statements (reviewapp/rawsql.py) ask to be prepared explicitly; a huge
    # threshold allows that and prepares nothing else. Set DB_PREPARED_STATEMENTS=0 behind a
    # pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
    prepared = os.environ.get("DB_PREPARED_STATEMENTS", "1") not in ("0", "false", "no")
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1 if prepared else None
# A claim holds a session-level advisory lock across two statements (item_claim, in
# labeling/services/claims.py). Behind a pooler in transaction mode those two statements may
# reach different server connections: set DB_SESSION_LOCKS=0 there, and the claim takes a
# transaction-level lock inside a transaction of its own instead (a BEGIN and a durable COMMIT
# more). Forgotten, the damage is bounded: the lock wait times out, and a process whose unlock
# finds no lock switches itself to transaction-level locks and logs it (labeling/lock_objects.py).
DB_SESSION_LOCKS = os.environ.get("DB_SESSION_LOCKS", "1") not in ("0", "false", "no")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # Not a rule: Django tells validators when a password really changed (never on the hash
    # upgrade at sign-in), and this one ends the person's API tokens then (reviewapp.E002).
    {"NAME": "reviewapp.passwords.CredentialsEpochHook"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files from the finders in development so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
BEHIND_PROXY = env_bool("BEHIND_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# How many proxies append to X-Forwarded-For in front of the app. 0 (no proxy) means the client
# address is REMOTE_ADDR and the header is ignored: trusting it there would let anyone pick the
# address their login attempts are counted against.
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "1" if BEHIND_PROXY else "0"))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# The load balancer probes over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Only the app's own scripts and styles run: no inline script or style, no eval. The API docs
# pages relax this for themselves (reviewapp/urls.py says why).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# Failed sign-ins (token endpoint, /login/, /admin/login/) are counted per client address and
# per username in the cache; past either limit, sign-in is refused until the window ends.
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", "900"))
LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("LOGIN_FAILURES_PER_USERNAME", "10"))
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "30"))

# Ingestion reads bodies itself so an oversized one answers 413 instead of Django's 400.
INGEST_MAX_BODY_BYTES = int(os.environ.get("INGEST_MAX_BODY_BYTES", str(10 * 1024 * 1024)))
INGEST_MAX_BATCH = 1000
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)
# How stale `last_used_at` may get before a request writes it again: one write per key per
# minute instead of one per request keeps the hot ingest path free of row-lock contention.
API_KEY_TOUCH_SECONDS = 60

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["reviewapp.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["reviewapp.permissions.IsOrganizationMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["reviewapp.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "reviewapp.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "reviewapp.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": NUM_PROXIES,
}
PERSONAL_TOKEN_TTL_DAYS = int(os.environ.get("PERSONAL_TOKEN_TTL_DAYS", "90"))

SPECTACULAR_SETTINGS = {
    "TITLE": "reviewapp API",
    "DESCRIPTION": (
        "Human-in-the-loop review for AI agents. Authenticate with `Authorization: Bearer "
        "<token>`: a project API key (agents) or a personal token from `/api/v1/auth/token`."
    ),
    "VERSION": "1.0.0",
    # The ingest contract is described by its pydantic models, whose JSON Schema (2020-12:
    # `"type": "null"` for optional fields) is valid OpenAPI 3.1 but not 3.0.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc come from the sidecar package: the docs work with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

REDIS_URL = os.environ.get("REDIS_URL", "")


def _cache_url(redis_url: str) -> str:
    """The cache's own Redis database: the broker's number plus one, so evicting or clearing
    cache keys can never touch queued tasks. CACHE_URL overrides it."""
    parts = urlsplit(redis_url)
    path = parts.path.strip("/")
    db = int(path) if path.isdigit() else 0
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


CACHE_URL = os.environ.get("CACHE_URL") or (_cache_url(REDIS_URL) if REDIS_URL else "")
# Tests run in parallel workers sharing one Redis: each gets its own key prefix (and clear()
# deletes only its own prefix, reviewapp/cache.py).
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
CACHE_KEY_PREFIX = f"reviewapp-{_XDIST_WORKER}" if _XDIST_WORKER else "reviewapp"
if CACHE_URL:
    # Shared by every web process: login failure counters must be, or each process would
    # allow its own full quota of guesses.
    CACHES = {
        "default": {
            "BACKEND": "reviewapp.cache.PrefixedRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    # The embedded default serves one process; counters are per process.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": CACHE_KEY_PREFIX}}

# Agents waiting for a decision (`GET /api/v1/actions/{id}?wait=N`, escalations/waiting.py).
# Without Redis pub/sub (REDIS_URL unset, or Redis down) each serving process reads the status
# of the actions its waiters wait on every ACTION_WAIT_POLL_SECONDS (one query for all of them);
# while subscribed, every ACTION_WAIT_CHECK_SECONDS, which catches a lost publish.
ACTION_WAIT_POLL_SECONDS = float(os.environ.get("ACTION_WAIT_POLL_SECONDS", "1"))
ACTION_WAIT_CHECK_SECONDS = float(os.environ.get("ACTION_WAIT_CHECK_SECONDS", "5"))
# Threads (and so database connections) per process for the waiters' reads under ASGI.
ACTION_WAIT_DB_THREADS = int(os.environ.get("ACTION_WAIT_DB_THREADS", "4"))
# Waits at once per process: under WSGI each holds a thread (the embedded server has 8), under
# ASGI a few kilobytes. Past the bound the pending state is answered at once with Retry-After.
ACTION_WAIT_THREADED_MAX = int(os.environ.get("ACTION_WAIT_THREADED_MAX", "4"))
ACTION_WAIT_ASYNC_MAX = int(os.environ.get("ACTION_WAIT_ASYNC_MAX", "10000"))

# Celery: with REDIS_URL unset, tasks run in-process (eagerly) and periodic jobs run from the
# in-process scheduler that `manage.py serve` (or `devserver`) starts in the serving process.
# The in-memory transport is never used (tasks run eagerly) but is still connected to; naming its
# host keeps kombu from warning "No hostname was supplied" at every start.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
# Tests give each parallel worker its own queue so their Celery workers never share tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
# Webhook sends have a queue of their own (reviewapp.celery.route_task), so receivers that hang
# never delay the beat sweeps: production runs a worker for it (`-Q webhooks`, or one worker
# with `-Q celery,webhooks`). Tasks run eagerly without Redis, whatever their queue.
WEBHOOK_CELERY_QUEUE = os.environ.get("WEBHOOK_CELERY_QUEUE", "webhooks")
CELERY_TASK_ROUTES = ("reviewapp.celery.route_task",)

# E-mail (approvers told an action entered their tier). The console backend prints messages to
# the server's output, so the embedded default needs no mail server; production sets
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the EMAIL_* variables. A timeout
# keeps an unreachable mail server from holding a worker (Django waits for ever by default).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "reviewapp <reviewapp@localhost>")

# The address people reach the app at, for links in e-mails and chat notifications (no request
# is at hand when a worker sends them). Defaults to the first trusted origin, which production
# sets anyway.
SITE_URL = (
    os.environ.get("SITE_URL") or (CSRF_TRUSTED_ORIGINS[0] if CSRF_TRUSTED_ORIGINS else "http://localhost:8000")
).rstrip("/")

# Webhooks (decisions to an action's callback_url, tier notifications to a ladder's chat
# webhook) refuse loopback, private, link-local and reserved destinations (reviewapp/outbound.py)
# so an API key cannot make the server reach into its own network. A laptop's receiver is on
# localhost, so DEBUG allows them unless this says otherwise.
WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Eager tasks would log every run in-process; keep the dev console for what matters.
    "loggers": {"django.db.backends": {"level": "INFO"}, "celery.app.trace": {"level": "WARNING"}},
}
