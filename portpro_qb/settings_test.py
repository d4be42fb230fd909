"""Test settings: the real services of this machine (PostgreSQL, Redis), the emulator mounted.

Each developer or parallel run may point at its own database and Redis db numbers with
TEST_DATABASE_URL / TEST_REDIS_URL / TEST_BROKER_URL (see README, "Tests").
"""

import os

os.environ["QBO_SANDBOX_ENABLED"] = "1"
os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portpro_qb"
)
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ["CELERY_BROKER_URL"] = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "C7fKjEnp15QX5CFKk8ZbtKHT6rkj5RPuT0vcTuVDnCc=")
os.environ.setdefault("QBO_ENVIRONMENT", "local")
os.environ.setdefault("QBO_SANDBOX_WEBHOOK_RETRY_SCALE", "0.01")

from portpro_qb.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# The live server listens on a random loopback port; the emulator is always local in tests.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
