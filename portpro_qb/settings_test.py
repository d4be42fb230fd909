"""Test settings: the real services of this machine (PostgreSQL, Redis), the emulator mounted.

Each developer or parallel run may point at its own database and Redis db numbers with
TEST_DATABASE_URL / TEST_REDIS_URL / TEST_BROKER_URL (see README, "Tests").

TEST_EMBEDDED=1 runs on the embedded default instead, as `make demo` does: a SQLite file, the
filesystem broker and no Redis (file locks, the file-shared rate limiter), all under
VAR_DIR (default var/test-embedded). Tests that need PostgreSQL or Redis carry the `postgres`
marker and are deselected there (`make test-embedded`).
"""

import os
import tempfile
from pathlib import Path

EMBEDDED = os.environ.get("TEST_EMBEDDED", "") == "1"
os.environ["QBO_SANDBOX_ENABLED"] = "1"
if EMBEDDED:
    _var = Path(
        os.environ.setdefault(
            "VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test-embedded")
        )
    )
    _var.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", f"sqlite:///{_var}/db.sqlite3")
    os.environ["REDIS_URL"] = ""
    os.environ["CELERY_BROKER_URL"] = "filesystem://"
else:
    os.environ["DATABASE_URL"] = os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portpro_qb"
    )
    os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["CELERY_BROKER_URL"] = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "C7fKjEnp15QX5CFKk8ZbtKHT6rkj5RPuT0vcTuVDnCc=")
os.environ.setdefault("QBO_ENVIRONMENT", "local")
# Load documents in a temporary directory of this run; worker processes inherit it (env).
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="portpro-test-media-"))
os.environ.setdefault("QBO_SANDBOX_WEBHOOK_RETRY_SCALE", "0.01")
# Webhook events decided and their change pull run at once (the tests of the debounce itself
# set their own values).
os.environ.setdefault("SYNC_PULL_DEBOUNCE_SECONDS", "0")
os.environ.setdefault("SYNC_WEBHOOK_ECHO_GRACE_SECONDS", "0")

from portpro_qb.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# The live server listens on a random loopback port; the emulator is always local in tests.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
if EMBEDDED:
    # A file, not SQLite's default in-memory test database: the live server, the Celery worker
    # process and the test share it, as web, worker and beat share the demo's.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405
# Sign-in throttling stays on in tests so tests/platform/test_login_throttle.py proves it.
# client.force_login (what the suite uses) skips authenticate(), so axes never counts it;
# client.login must pass request=HttpRequest(), since AxesStandaloneBackend needs a request.
# Failures live in the database (AccessAttempt), rolled back or flushed with each test.
AXES_ENABLED = True
# Alerts' mail lands in django.core.mail.outbox (tests/alerts).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALERTS_WEBHOOK_ALLOW_HTTP_LOOPBACK = True  # tests' receivers listen on 127.0.0.1
