"""Conveyor settings: every value comes from the environment, its default beside it."""

import ipaddress
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state (SQLite file, private Redis data, generated secrets, static files) lives in
# var/ of the checkout, or in CONVEYOR_STATE_DIR.
VAR_DIR = Path(os.environ.get("CONVEYOR_STATE_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def env_list(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return list(default)
    return comma_list(value)


def comma_list(value):
    return [item.strip() for item in value.split(",") if item.strip()]


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(name, default):
    """A logging level by name, in any case (`debug`, `Warning`)."""
    value = os.environ.get(name) or default
    if value.strip().upper() not in LOG_LEVELS:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(LOG_LEVELS)} (any case), got {value!r}")
    return value.strip().upper()


def env_choice(name, default, choices):
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_or_var_file(name, filename):
    """The variable when it is set, else what `make run` (scripts/run.py) keeps in var/FILENAME,
    so that every manage.py command in that checkout finds the same keys and Redis."""
    value = os.environ.get(name)
    if value:
        return value
    path = VAR_DIR / filename
    return path.read_text().strip() if path.exists() else ""


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_or_var_file("SECRET_KEY", "secret_key")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (make run creates one in var/)")
    SECRET_KEY = "insecure-development-only-key"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_rq: jobs' rqworker, rqworker-pool and rqscheduler fill in the platform's defaults.
    "core",
    "jobs",
    "django_rq",
    "workspaces",
    "publishing",
    "aggregation",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

# SQLite file by default; DATABASE_URL (postgres://user@host/db) for PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'conveyor.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, workers and scheduler write the same file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not memory: the tests' worker processes open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-conveyor.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Redis: one URL for queues, cache, rate limits and dedupe keys -------------------------
# When unset, `make run` starts a private redis-server (password protected) and writes its URL
# to var/redis_url, read here; the tests start their own and set REDIS_URL.
REDIS_URL = env_or_var_file("REDIS_URL", "redis_url") or "redis://127.0.0.1:6379/0"
# Web requests must fail fast when Redis is down (503 within a second), not hang.
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 0.5)
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 1.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "conveyor-cache",
        "OPTIONS": {
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }
}

# --- Queues and their policies (../shared/DESIGN.md) -------------------------------------
# Each figure can be changed without code: CONVEYOR_QUEUE_<NAME>_JSON holds the fields to
# override, e.g. CONVEYOR_QUEUE_PUBLISHING_BUILDS_JSON='{"rate_limit": "10/60", "retry_delays": [5, 10]}'.
# jobs/policies.py lists and validates the fields. `concurrency` caps how many of the queue's
# jobs run at once across every worker process (held in Redis); in one pool serving several
# queues, a queue also keeps at least one of the pool's processes free for the others.
DEFAULT_QUEUE_POLICIES = {
    "publishing-builds": {
        "retry_delays": [2, 4, 8],
        "rate_limit": "5/60",
        "keep_finished": 100,
        "keep_failed": 500,
        "finished_ttl": 7 * 86400,
        "failed_ttl": 30 * 86400,
        "timeout": 900,
        "concurrency": 1,
    },
    "content-aggregation": {
        "retry_delays": [2, 4, 8],
        # Per source host: every fetch job is enqueued with its host as rate key.
        "rate_limit": "30/60",
        "keep_finished": 10,
        "keep_failed": 5,
        "timeout": 300,
        "concurrency": 2,
    },
    "notifications": {
        "retry_delays": [2, 4, 8],
        "keep_finished": 10,
        "keep_failed": 5,
        "concurrency": 1,
    },
    "user-actions": {
        "retry_delays": [2, 4, 8],
        "keep_finished": 10,
        "keep_failed": 5,
        "concurrency": 1,
    },
    "rules-run": {
        "retry_delays": [30, 120],
        # Per domain: every run is enqueued with its URL's host as rate key.
        "rate_limit": "10/60",
        "keep_finished": 1000,
        "finished_ttl": 86400,
        "keep_failed": 100000,
        "failed_ttl": 7 * 86400,
        "concurrency": 5,
    },
    "alerts-dispatch": {
        "retry_delays": [10, 30, 60, 120, 300],
        "keep_finished": 1000,
        "finished_ttl": 86400,
        "keep_failed": 100000,
        "failed_ttl": 7 * 86400,
        "dedupe_window": 300,
        "concurrency": 10,
    },
    # The platform's own periodic work: reconciler and retention cleanup.
    "maintenance": {"retry_delays": [], "keep_finished": 50, "keep_failed": 200, "timeout": 120, "concurrency": 1},
}


def env_json(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be JSON, got {value!r}") from None


QUEUE_POLICIES = {
    name: {**policy, **env_json(f"CONVEYOR_QUEUE_{name.upper().replace('-', '_')}_JSON", {})}
    for name, policy in DEFAULT_QUEUE_POLICIES.items()
}
# Queues `manage.py rqworker` and `rqworker-pool` serve when none are named, highest priority
# first. The platform's upkeep (the reconciler above all) comes first: behind the others, a
# backlog would hold it back, and a killed worker's rows would wait for the backlog to drain.
# Its concurrency of 1 keeps it to one worker at a time.
WORKER_QUEUES = env_list("WORKER_QUEUES", ["maintenance", *(name for name in QUEUE_POLICIES if name != "maintenance")])
# `rqworker-pool`'s size when --num-workers is not given (one queue named: that queue's
# concurrency). Two per core: real jobs (EAS CLI, HTTP fetches) spend most of their time waiting.
WORKER_PROCESSES = env_int("WORKER_PROCESSES", 4)
# The host name workers report to django-rq's dashboard (default: the machine's own).
WORKER_HOSTNAME = env_str("WORKER_HOSTNAME", "")
# SIGTERM lets the running job finish for this long, then it is interrupted and retried.
WORKER_SHUTDOWN_GRACE = env_int("WORKER_SHUTDOWN_GRACE", 30)
# A worker refreshes its liveness key (and the concurrency lease of its running job) every
# WORKER_HEARTBEAT seconds; they expire after WORKER_ALIVE_TTL, so a killed worker's slot frees itself.
# Each heartbeat also re-registers a worker that Redis forgot (FLUSHALL) and restarts its dead scheduler.
WORKER_HEARTBEAT = env_float("WORKER_HEARTBEAT", 3)
WORKER_ALIVE_TTL = env_int("WORKER_ALIVE_TTL", 10)
# How often the reconciler and the retention cleanup run (scheduler), in seconds.
RECONCILE_INTERVAL = env_int("RECONCILE_INTERVAL", 10)
RECONCILE_GRACE = env_float("RECONCILE_GRACE", 5)
CLEANUP_INTERVAL = env_int("CLEANUP_INTERVAL", 300)
# Seconds between two ticks of `manage.py rqscheduler`.
SCHEDULER_INTERVAL = env_float("SCHEDULER_INTERVAL", 1)
# A job due in RQ's scheduled registries (retries, delays, EAS polls, rate-limited waits) that
# no scheduler promoted this many seconds after its time is promoted by the platform's
# watchdog (workers' heartbeats and the rqscheduler tick), with a warning in the log.
SCHEDULED_OVERDUE_GRACE = env_float("SCHEDULED_OVERDUE_GRACE", 5)
# How often the scheduler re-reads the schedules apps keep in the database (source polls).
SCHEDULE_SYNC_INTERVAL = env_int("SCHEDULE_SYNC_INTERVAL", 30)

RQ_QUEUES = {
    name: {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": policy.get("timeout", 180),
        "CONNECTION_KWARGS": {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT},
    }
    for name, policy in QUEUE_POLICIES.items()
}
# The stock commands (rqworker, rqworker-pool, rqscheduler) and the dashboard use the platform's classes.
RQ = {
    "WORKER_CLASS": "jobs.worker.ConveyorWorker",
    "QUEUE_CLASS": "jobs.queueing.ConveyorQueue",
    "SCHEDULER_CLASS": "jobs.scheduling.ConveyorScheduler",
}
RQ_SHOW_ADMIN_LINK = True

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50),
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Per user, on the endpoints that enqueue work (core/throttling.py): "N/second|minute|hour|day".
    "DEFAULT_THROTTLE_RATES": {
        "publishing": env_str("THROTTLE_PUBLISHING", "30/hour"),
        "runs": env_str("THROTTLE_RUNS", "60/minute"),
        "fetches": env_str("THROTTLE_FETCHES", "60/minute"),
        "actions": env_str("THROTTLE_ACTIONS", "60/minute"),
        "channel-tests": env_str("THROTTLE_CHANNEL_TESTS", "10/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Conveyor API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The docs pages load Swagger UI and ReDoc from our static files, pinned in requirements.txt.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge fetched from validator.swagger.io either.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Several models have a status: one enum name each in the schema.
    "ENUM_NAME_OVERRIDES": {
        "PublishingStatusEnum": "publishing.models.Publishing.Status",
        "RunStatusEnum": "aggregation.models.RunStatus",
        "DeliveryStatusEnum": "alerts.models.AlertDelivery.Status",
        "PublishingPlatformEnum": "publishing.models.Publishing.Platform",
        "SourcePlatformEnum": "aggregation.models.Source.Platform",
        "FetchModeEnum": "alerts.models.Rule.FetchMode",
        "ConnectionStateEnum": ["connected", "unavailable"],
    },
}

# --- Per-workspace quotas: a create past the limit is a 400 quota_exceeded ---------------
WORKSPACE_MAX_RULES = env_int("WORKSPACE_MAX_RULES", 200)
WORKSPACE_MAX_SOURCES = env_int("WORKSPACE_MAX_SOURCES", 500)
WORKSPACE_MAX_CHANNELS = env_int("WORKSPACE_MAX_CHANNELS", 20)

# --- Secrets at rest ----------------------------------------------------------------------
# Fernet key(s), comma-separated, newest first (rotation: prepend the new key).
# `make run` creates one in var/ when unset; production must set it.
FIELD_ENCRYPTION_KEYS = comma_list(env_or_var_file("FIELD_ENCRYPTION_KEY", "field_encryption_key"))

# --- Publishing (Expo EAS) ----------------------------------------------------------------
EAS_CLI = env_str("EAS_CLI", "eas")
EAS_COMMAND_TIMEOUT = env_int("EAS_COMMAND_TIMEOUT", 300)
# Seconds between two `eas build:view` polls: waiting for a build holds no worker.
EAS_POLL_INTERVAL = env_float("EAS_POLL_INTERVAL", 30)
# A build that is not finished after this long is failed.
EAS_BUILD_DEADLINE = env_int("EAS_BUILD_DEADLINE", 3 * 3600)
# A publishing's credentials are forgotten when it succeeds, and this long after it fails
# (until then an operator may Retry it).
PUBLISHING_FAILED_CREDENTIALS_TTL = env_int("PUBLISHING_FAILED_CREDENTIALS_TTL", 86400)
# `eas` runs in the project's own source (publishing/checkout.py): a git repository fetched
# per use (time and size limits below), or a directory under EAS_PROJECTS_ROOT (unset: off).
EAS_PROJECTS_ROOT = env_str("EAS_PROJECTS_ROOT", "")
EAS_CHECKOUT_TIMEOUT = env_float("EAS_CHECKOUT_TIMEOUT", 300)
EAS_CHECKOUT_MAX_BYTES = env_int("EAS_CHECKOUT_MAX_BYTES", 500 * 1024 * 1024)
EAS_CHECKOUT_MAX_FILES = env_int("EAS_CHECKOUT_MAX_FILES", 100_000)
# Tests only: repositories over plain http (their git server listens on loopback).
EAS_GIT_ALLOW_HTTP = env_bool("EAS_GIT_ALLOW_HTTP", False)

# --- Outbound fetches ----------------------------------------------------------------------
# Off: URLs resolving to loopback, private, link-local (cloud metadata) addresses are refused.
ALLOW_PRIVATE_FETCH = env_bool("ALLOW_PRIVATE_FETCH", False)
# Non-public networks that may be fetched all the same (an intranet), e.g. "10.1.0.0/16,192.168.5.7".
OUTBOUND_ALLOWED_NETWORKS = env_list("OUTBOUND_ALLOWED_NETWORKS", [])
for _network in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: {_network!r} is not an IP network") from None
OUTBOUND_TIMEOUT = env_float("OUTBOUND_TIMEOUT", 10)
OUTBOUND_MAX_BYTES = env_int("OUTBOUND_MAX_BYTES", 5 * 1024 * 1024)

# --- Outbound name resolution ----------------------------------------------------------------
# Nameservers that resolve every outbound host ("IP" or "IP:PORT", IPv6 in brackets), instead of
# the system's resolver and hosts file: a filtering resolver in production, a stand-in in tests.
OUTBOUND_DNS_SERVERS = env_list("OUTBOUND_DNS_SERVERS", [])


def _nameserver_problem(entry):
    # Same reading as core.outbound.nameserver: "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6.
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "not an IP address"
    return None if not port or port.isdigit() else "not a port"


for _server in OUTBOUND_DNS_SERVERS:
    if _nameserver_problem(_server):
        raise ImproperlyConfigured(f"OUTBOUND_DNS_SERVERS: {_server!r} is not IP or IP:PORT") from None

# --- Aggregation ------------------------------------------------------------------------------
# Pages one fetch follows at most (the rest waits for the next fetch), and posts per page.
SOURCE_MAX_PAGES = env_int("SOURCE_MAX_PAGES", 5)
SOURCE_PAGE_SIZE = env_int("SOURCE_PAGE_SIZE", 40)
# A source whose fetches fail this many times in a row is disabled until its owner enables it.
SOURCE_MAX_FAILURES = env_int("SOURCE_MAX_FAILURES", 5)
SOURCE_DEFAULT_POLL_INTERVAL = env_int("SOURCE_DEFAULT_POLL_INTERVAL", 900)

# --- Platform alerts (alerts.PlatformRoute, alerts/platform.py) -------------------------------
# Seconds between two checks of the platform's health (queue backlogs, live workers): a
# periodic job on the maintenance queue, and the rqscheduler process itself when no worker lives.
PLATFORM_CHECK_INTERVAL = env_float("PLATFORM_CHECK_INTERVAL", 60)
# A route's threshold when it names none: the age of a queue's oldest queued job, and how
# long the platform may have no live worker, in minutes.
PLATFORM_BACKLOG_MINUTES = env_int("PLATFORM_BACKLOG_MINUTES", 15)
PLATFORM_NO_WORKER_MINUTES = env_int("PLATFORM_NO_WORKER_MINUTES", 2)
# While a backlog or a missing worker lasts, a channel hears of it again once per this many seconds.
PLATFORM_ALERT_WINDOW = env_int("PLATFORM_ALERT_WINDOW", 3600)

# --- Alerts (change detection) ----------------------------------------------------------------
# The per-domain limit is the rules-run queue's rate_limit (10 checks a minute per domain);
# domains listed here are not limited (your own site, a local target in benchmarks).
RULES_UNLIMITED_DOMAINS = env_list("RULES_UNLIMITED_DOMAINS", [])
RULE_DEFAULT_INTERVAL = env_int("RULE_DEFAULT_INTERVAL", 3600)
RULE_MIN_INTERVAL = env_int("RULE_MIN_INTERVAL", 60)
# Runs that jump the queue (test runs per user; a high-priority rule's scheduled runs per
# workspace) in any hour; past it, test runs are refused (429) and scheduled ones wait their turn.
RULE_FRONT_RUNS_PER_HOUR = env_int("RULE_FRONT_RUNS_PER_HOUR", 60)
# Snapshots kept per rule, newest first; older ones are pruned as new ones arrive.
RULE_SNAPSHOTS_KEPT = env_int("RULE_SNAPSHOTS_KEPT", 100)
# Headless mode: the Chromium binary (found on PATH when unset) and the page load timeout.
CHROMIUM_PATH = env_str("CHROMIUM_PATH", "")
HEADLESS_TIMEOUT = env_float("HEADLESS_TIMEOUT", 30)
# Extraction runs in a helper process (alerts/extract.py): over any of these, the run fails
# at once with an error naming the limit. Seconds (wall clock and CPU), megabytes of memory,
# characters of extracted text.
EXTRACT_TIMEOUT = env_float("EXTRACT_TIMEOUT", 5)
EXTRACT_MAX_MEMORY_MB = env_int("EXTRACT_MAX_MEMORY_MB", 512)
EXTRACT_MAX_TEXT = env_int("EXTRACT_MAX_TEXT", 1_000_000)

# --- Logs, metrics, error reports ------------------------------------------------------------
# Levels by name, in any case. Each job of a row logs one line as it starts and one as it
# ends (end, retry or fail) with its queue, job id, row kind and id, attempt and duration;
# LOG_FORMAT=json writes every line as a JSON object with those as keys (core/logs.py).
LOG_LEVEL = env_log_level("LOG_LEVEL", "INFO")
RQ_LOG_LEVEL = env_log_level("RQ_LOG_LEVEL", "WARNING")
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "core.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # RQ logs one INFO line per job; ours carry the row id, so keep RQ's to warnings
        # (the stock commands apply RQ_LOG_LEVEL too, unless -v 2 asks for DEBUG).
        "rq.worker": {"level": RQ_LOG_LEVEL},
        "rq.scheduler": {"level": RQ_LOG_LEVEL},
        # A handler of its own, so that `rqscheduler` keeps this level instead of INFO.
        "rq_scheduler.scheduler": {"level": RQ_LOG_LEVEL, "handlers": ["console"], "propagate": False},
        # One line per outbound request is too many; errors are logged where they matter.
        "httpx": {"level": "WARNING"},
    },
}

# GET /metrics (Prometheus) answers only with `Authorization: Bearer METRICS_TOKEN`; unset, it is a 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Job attempts on record (admin, API) are deleted this many days after they started.
ATTEMPTS_KEPT_DAYS = env_int("ATTEMPTS_KEPT_DAYS", 30)

# Errors to Sentry through sentry-sdk's Django and RQ integrations, only when SENTRY_DSN is set
# (sentry-sdk is imported only then: core/sentry.py).
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
if SENTRY_DSN:
    from core.sentry import sentry_init

    sentry_init(SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)

# --- Production: HTTPS, cookies, HSTS, the proxy in front (README "Production") ---------------
# `manage.py check --deploy` is clean with the variables README.md documents. Cookies and
# the redirect default to on when SITE_URL is https, off for `make run` on plain http.
_SITE_IS_HTTPS = SITE_URL.startswith("https://")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _SITE_IS_HTTPS)
# Load balancers and supervisors probe /health over plain http.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _SITE_IS_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _SITE_IS_HTTPS)
# Off by default: once a browser has seen it, the site cannot go back to http for that long.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Only behind a proxy that sets X-Forwarded-Proto itself and strips the client's: otherwise
# any client could claim https.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Operator views: queue charts and the failed-jobs page (jobs/charts.py, jobs/operator_views.py)
# Seconds between two samples of each queue's backlog and oldest queued job (a maintenance job).
CHARTS_SAMPLE_INTERVAL = env_int("CHARTS_SAMPLE_INTERVAL", 60)
# The failed-jobs page searches the newest this many failed jobs of each queue.
FAILED_JOBS_SEARCH_LIMIT = env_int("FAILED_JOBS_SEARCH_LIMIT", 5000)
