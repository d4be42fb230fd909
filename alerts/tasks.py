"""Beat's alert passes (alerts/migrations/0002_beat_schedule.py): thin adapters over
alerts.services. Both are interval checks of durable state, so a beat or worker that was down
at the digest hour still sends the missed digest on its next pass."""

from celery import shared_task

from alerts import services


@shared_task(ignore_result=True)
def check_immediate() -> int:
    return len(services.immediate_check())


@shared_task(ignore_result=True)
def send_due_digests() -> int:
    return len(services.digests_send_due())
