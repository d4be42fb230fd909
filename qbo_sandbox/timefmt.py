"""QBO time formats: response `time` is Pacific with millis, MetaData times have none."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

PACIFIC = ZoneInfo("America/Los_Angeles")


def qbo_time(when=None):
    return (when or timezone.now()).astimezone(PACIFIC).isoformat(timespec="milliseconds")


def meta_time(when):
    return when.astimezone(PACIFIC).isoformat(timespec="seconds")


def local_today():
    return timezone.now().astimezone(PACIFIC).date()


def parse_qbo_datetime(value):
    """ISO date or datetime; naive values are company-local (Pacific) like QBO's."""
    value = str(value).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        if len(value) == 10:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PACIFIC)
    return parsed
