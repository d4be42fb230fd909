"""Beat's alert passes, kept in django-celery-beat (editable in admin) like sync's jobs.

Both are interval checks of stored state, not a crontab: the digest pass sends a tenant's
digest once its slot (ALERTS_DIGEST_HOUR, TIME_ZONE) has come and no digest of that slot went
out, so a beat that was down at the hour sends it on its next pass; the immediate pass looks
at the connection, token expiry and read meter (a few queries, no QuickBooks call)."""

from django.db import migrations

JOBS = [
    ("Alerts: immediate conditions", "alerts.tasks.check_immediate", 60),
    ("Alerts: daily digest when due", "alerts.tasks.send_due_digests", 300),
]


def create_jobs(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in JOBS:
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": every, "enabled": True}
        )


def remove_jobs(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, _, _ in JOBS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_jobs, remove_jobs)]
