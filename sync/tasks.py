"""Celery tasks: thin adapters that take ids and call one service each."""

from celery import shared_task

from sync.services import batch, engine, enqueue, pull, reconcile, sweep


@shared_task(acks_late=True, ignore_result=True)
def push_record(sync_type: str, pk: int, trigger: str = "sweep") -> str:
    return engine.push_record(sync_type=sync_type, pk=pk, trigger=trigger)


@shared_task(acks_late=True, ignore_result=True)
def push_batch(sync_type: str, pks: list[int]) -> dict:
    outcomes = batch.push_batch(sync_type=sync_type, pks=pks)
    sweep.after_batch(sync_type=sync_type, pks=pks, outcomes=outcomes)
    return outcomes


@shared_task(ignore_result=True)
def sweep_due() -> dict:
    return sweep.dispatch_due()


@shared_task(ignore_result=True)
def reclaim_leases() -> int:
    return engine.reclaim_expired_leases()


@shared_task(ignore_result=True)
def pull_changes() -> dict:
    return pull.pull_all()


@shared_task(ignore_result=True)
def process_webhooks() -> int:
    return pull.webhook_events_process_pending()


@shared_task(acks_late=True, ignore_result=True)
def run_bulk_job(job_id: int) -> None:
    from sync.services import actions

    actions.bulk_run(job_id=job_id)


@shared_task(ignore_result=True)
def reconcile_due() -> int:
    claimed = reconcile.reconcile_due()
    for run_id in claimed:
        enqueue.reconciliation(run_id)
    return len(claimed)


@shared_task(acks_late=True, ignore_result=True)
def reconcile_nightly(run_id: int) -> int:
    return reconcile.run_nightly(run_id=run_id).new_problems
