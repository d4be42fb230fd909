"""The stored-webhook pass also runs the change pulls webhooks asked for (debounced): every
10 s rather than 30, so a payment made in QuickBooks shows within about half a minute."""

from django.db import migrations

NAME = "Process stored webhook events"


def every(seconds):
    def change(apps, schema_editor):
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.filter(name=NAME).update(interval=interval)

    return change


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0009_read_budget_and_webhook_health"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(every(10), every(30))]
