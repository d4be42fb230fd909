"""The scheduled sync jobs, kept in django-celery-beat so operators can edit them in admin."""

from django.conf import settings
from django.db import migrations

JOBS = [
    ("Sweep pending and retry-due records", "sync.tasks.sweep_due", settings.SYNC_SWEEP_SECONDS),
    ("Return expired in-flight leases", "sync.tasks.reclaim_leases", 120),
    ("Pull changes from QuickBooks (CDC)", "sync.tasks.pull_changes", settings.SYNC_PULL_SECONDS),
    ("Process stored webhook events", "sync.tasks.process_webhooks", 30)  # 10 s since 0010,
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
    dependencies = [("sync", "0002_roles")]
    operations = [migrations.RunPython(create_jobs, remove_jobs)]
