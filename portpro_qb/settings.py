"""One settings module; every value comes from an environment variable (see README)."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


DEBUG = env_bool("DEBUG", False)
# The demo default is for a laptop; production must set its own (check --deploy refuses it).
SECRET_KEY = env("SECRET_KEY", "dev-insecure-portpro-qb-change-me")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
# A reverse proxy terminates HTTPS and sets X-Forwarded-Proto / X-Forwarded-For (see README).
_BEHIND_PROXY = env_bool("SECURE_PROXY_SSL_HEADER", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "axes",
    "finance",
    "sync",
    "alerts",
]

QBO_SANDBOX_ENABLED = env_bool("QBO_SANDBOX_ENABLED", False)
if QBO_SANDBOX_ENABLED:
    INSTALLED_APPS.append("qbo_sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a lock-out flagged during authenticate() into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portpro_qb.urls"
WSGI_APPLICATION = "portpro_qb.wsgi.application"

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
                "portpro_qb.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker, beat and the emulator share one SQLite file in the demo. WAL lets readers
    # carry on while one process writes; IMMEDIATE takes the write lock at BEGIN, so two
    # transactions never deadlock upgrading a read lock; the busy timeout waits for a lock
    # instead of failing. No transaction holds the lock across a network call (tests enforce it).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in throttling (django-axes) ---------------------------------------------------
# AxesStandaloneBackend first: it refuses a locked-out username+IP before ModelBackend checks
# the password, for the TMS login and the Django admin login alike (both call authenticate()).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
# 0 = no cool-off: locked until Support deletes the attempt in Django admin → Axes.
_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=_COOLOFF_MINUTES) if _COOLOFF_MINUTES > 0 else None
# Count failures per username *and* IP together: guessing one account's password from one
# address stops after AXES_FAILURE_LIMIT tries, yet nobody can lock a colleague out by typing
# their name wrong from elsewhere, nor lock a whole dispatch office behind one NAT address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful sign-in clears that username+IP's failures
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"  # rendered with HTTP 429
AXES_HTTP_RESPONSE_CODE = 429


def _client_ip(request):
    """The address axes counts failures against. Behind our reverse proxy (SECURE_PROXY_SSL_HEADER
    on) REMOTE_ADDR is the proxy itself, so take the right-most X-Forwarded-For entry: the one
    the proxy appended. Entries to its left come from the client and could be forged to dodge
    the counter. Without the proxy, or if that entry is not an address, REMOTE_ADDR."""
    from django.conf import settings

    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        last_hop = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last_hop))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR")


AXES_CLIENT_IP_CALLABLE = _client_ip

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Load documents (PODs, BOLs) are kept through Django's storage API: files under MEDIA_ROOT.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"  # not served: documents are read through the app, never by URL
# The largest load document accepted (QuickBooks takes attachments up to 100 MB).
LOAD_DOCUMENT_MAX_BYTES = env_int("LOAD_DOCUMENT_MAX_BYTES", 100 * 1024 * 1024)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_STORAGE",
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage",
        )
    },
}

# Security headers; the HTTPS ones are switched on by env in production (check --deploy).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
if _BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
if CELERY_BROKER_URL.startswith("filesystem"):
    # kombu's filesystem transport with atomic publish and claim (portpro_qb/broker.py).
    CELERY_BROKER_TRANSPORT = "portpro_qb.broker:Transport"
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        # The default 1 s poll delivers about one message a second: far too slow for a sync.
        "polling_interval": 0.05,
    }
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "portpro_qb")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Prefetch 1 stalls the consumer (filesystem broker: ~1 task/s; thread pool on Redis: stops),
# measured here; 4 drains 300 tasks in seconds. With acks_late a prefetched task is
# redelivered if its worker dies, and the lease sweep recovers the records either way.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REDIS_URL = env("REDIS_URL", "")

# --- Secrets at rest ----------------------------------------------------------------------
# Fernet key(s), comma separated, newest first (rotation). Demo falls back to one derived
# from SECRET_KEY so `make demo` needs no setup; production must set its own.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", "")

# --- QuickBooks -------------------------------------------------------------------------
QBO_ENVIRONMENT = env("QBO_ENVIRONMENT", "local")  # local | sandbox | production
QBO_LOCAL_BASE_URL = env("QBO_LOCAL_BASE_URL", "http://127.0.0.1:8000/qbo-sandbox").rstrip("/")
# With the built-in emulator, `connect_sandbox` registers an app with these same values.
_LOCAL = QBO_ENVIRONMENT == "local"
QBO_CLIENT_ID = env("QBO_CLIENT_ID", "portpro-local-client" if _LOCAL else "")
QBO_CLIENT_SECRET = env("QBO_CLIENT_SECRET", "portpro-local-secret" if _LOCAL else "")
QBO_REDIRECT_URI = env("QBO_REDIRECT_URI", "http://127.0.0.1:8000/quickbooks/callback/")
QBO_WEBHOOK_VERIFIER_TOKEN = env(
    "QBO_WEBHOOK_VERIFIER_TOKEN", "portpro-local-verifier" if _LOCAL else ""
)
QBO_MINOR_VERSION = env_int("QBO_MINOR_VERSION", 75)
QBO_REQUEST_TIMEOUT = env_float("QBO_REQUEST_TIMEOUT", 30.0)
QBO_RATE_LIMIT_ENABLED = env_bool("QBO_RATE_LIMIT_ENABLED", True)
QBO_RATE_PER_MINUTE = env_int("QBO_RATE_PER_MINUTE", 500)
QBO_RATE_PER_SECOND = env_int("QBO_RATE_PER_SECOND", 10)
QBO_BATCH_RATE_PER_MINUTE = env_int("QBO_BATCH_RATE_PER_MINUTE", 40)
QBO_THROTTLE_BACKOFF_SECONDS = env_int("QBO_THROTTLE_BACKOFF_SECONDS", 60)
# The connection card and every page's banner warn this many days before a tenant's QuickBooks
# authorization ends (Intuit's hard expiry, ≤ 5 years from consent, or the rolling one).
QBO_TOKEN_EXPIRY_WARNING_DAYS = env_int("QBO_TOKEN_EXPIRY_WARNING_DAYS", 30)

SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", 300)
SYNC_MAX_ATTEMPTS = env_int("SYNC_MAX_ATTEMPTS", 12)
SYNC_BATCH_SIZE = env_int("SYNC_BATCH_SIZE", 30)
SYNC_RETRY_BASE_SECONDS = env_int("SYNC_RETRY_BASE_SECONDS", 30)
SYNC_RETRY_MAX_SECONDS = env_int("SYNC_RETRY_MAX_SECONDS", 3600)
SYNC_SWEEP_LIMIT = env_int("SYNC_SWEEP_LIMIT", 2000)
# A tenant's share of the shared worker queue: records queued or in flight at once (3 batches,
# fewer tasks than worker processes, so another tenant's push on change finds one free).
SYNC_REALM_QUEUE_LIMIT = env_int("SYNC_REALM_QUEUE_LIMIT", 90)
# Initial beat intervals written by migration sync 0003 (then editable in admin).
SYNC_SWEEP_SECONDS = env_int("SYNC_SWEEP_SECONDS", 15)
SYNC_PULL_SECONDS = env_int("SYNC_PULL_SECONDS", 300)
# Reads are metered (CorePlus): while webhooks are healthy the CDC runs only as a safety sweep
# at this long interval; SYNC_PULL_SECONDS is the short one (no webhooks, or gone silent).
SYNC_SAFETY_PULL_SECONDS = env_int("SYNC_SAFETY_PULL_SECONDS", 10800)
# A webhook asks for one change pull this long after the first event of its burst.
SYNC_PULL_DEBOUNCE_SECONDS = env_int("SYNC_PULL_DEBOUNCE_SECONDS", 30)
# A stored webhook event is decided this long after it arrives (our echoes settle first).
SYNC_WEBHOOK_ECHO_GRACE_SECONDS = env_int("SYNC_WEBHOOK_ECHO_GRACE_SECONDS", 3)
# A write of ours that no webhook followed for this long: webhooks are taken as silent.
SYNC_WEBHOOK_SILENCE_SECONDS = env_int("SYNC_WEBHOOK_SILENCE_SECONDS", 900)
# While Intuit refuses reads, one pull tries again this often (an upgrade lifts the block).
SYNC_READS_PROBE_SECONDS = env_int("SYNC_READS_PROBE_SECONDS", 3600)
# Intuit's monthly CorePlus allowance for the developer workspace (Builder tier: 500,000),
# shared by every tenant; the QuickBooks page warns from this share of it.
QBO_COREPLUS_ALLOWANCE = env_int("QBO_COREPLUS_ALLOWANCE", 500_000)
QBO_COREPLUS_WARN_FRACTION = env_float("QBO_COREPLUS_WARN_FRACTION", 0.8)

# --- Reconciliation (sync/services/reconcile.py): the nightly TMS ↔ QuickBooks comparison ---
RECONCILE_ENABLED = env_bool("RECONCILE_ENABLED", True)
# The nightly run starts at the first beat tick from this hour (UTC) on, once a day per tenant.
RECONCILE_HOUR = env_int("RECONCILE_HOUR", 3)
# The nightly run and the report's default period: documents dated within this many days.
RECONCILE_DAYS = env_int("RECONCILE_DAYS", 90)

# --- Alerts (alerts/): e-mail digests and immediate alerts, an optional Slack webhook ---
# Links in alerts are absolute: the address people open the app at.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Without EMAIL_HOST, mail is written to files under VAR_DIR/mail (the demo's inbox); with it,
# sent by SMTP. EMAIL_BACKEND overrides either (e.g. the console backend).
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "PortPro QuickBooks <alerts@portpro.example>")
# The daily digest goes out from this hour (TIME_ZONE), checked every few minutes by beat.
ALERTS_DIGEST_HOUR = env_int("ALERTS_DIGEST_HOUR", 7)
ALERTS_WEBHOOK_TIMEOUT = env_float("ALERTS_WEBHOOK_TIMEOUT", 5.0)
# Plain-http webhooks to this machine (a local receiver): the demo and tests; else https only.
ALERTS_WEBHOOK_ALLOW_HTTP_LOOPBACK = env_bool("ALERTS_WEBHOOK_ALLOW_HTTP_LOOPBACK", DEBUG)

QB_ID_VERIFIER = env("QB_ID_VERIFIER", "sync.services.verify.qb_object_exists")
QB_ACCOUNT_VERIFIER = env("QB_ACCOUNT_VERIFIER", "sync.services.verify.qb_income_account_exists")
QBO_SANDBOX_WEBHOOK_RETRY_SCALE = env_float("QBO_SANDBOX_WEBHOOK_RETRY_SCALE", 1.0)
QBO_SANDBOX_THROTTLE_ENABLED = env_bool("QBO_SANDBOX_THROTTLE_ENABLED", True)
# The largest file the emulator's upload endpoint takes (Intuit: 100 MB).
QBO_SANDBOX_ATTACHMENT_MAX_BYTES = env_int("QBO_SANDBOX_ATTACHMENT_MAX_BYTES", 100 * 1024 * 1024)
# Seconds a used (rotated) refresh token still answers with the same new pair.
QBO_SANDBOX_REFRESH_GRACE_SECONDS = env_int("QBO_SANDBOX_REFRESH_GRACE_SECONDS", 30)
# Token for /qbo-sandbox/api/faults/<realm> (header X-Sandbox-Admin-Token); empty = staff only.
QBO_SANDBOX_ADMIN_TOKEN = env("QBO_SANDBOX_ADMIN_TOKEN", "")
# Emulator: monthly CorePlus calls per app (all its companies) before its 429; per app: create-app.
QBO_SANDBOX_COREPLUS_ALLOWANCE = env_int("QBO_SANDBOX_COREPLUS_ALLOWANCE", 500_000)
# Emulator: webhook events pending this long are packed into one delivery (several realms).
QBO_SANDBOX_WEBHOOK_COALESCE_SECONDS = env_float("QBO_SANDBOX_WEBHOOK_COALESCE_SECONDS", 0.0)
# Emulator: days from consent to a refresh token's hard expiry (Intuit: at most 5 years).
QBO_SANDBOX_REFRESH_HARD_EXPIRY_DAYS = env_int("QBO_SANDBOX_REFRESH_HARD_EXPIRY_DAYS", 1826)


def _is_loopback(url):
    return (urlparse(url).hostname or "") in {"127.0.0.1", "localhost", "::1"}


# oauthlib refuses plain HTTP; allow it only for the built-in emulator on this machine.
if QBO_ENVIRONMENT == "local" and _is_loopback(QBO_LOCAL_BASE_URL):
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "sync.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"], "formatter": "plain"}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # requests_oauthlib logs bearer headers at DEBUG; never let them through.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
