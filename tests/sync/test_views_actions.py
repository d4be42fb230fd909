"""Row and bulk actions: state change, audit row, htmx partials, permissions."""

import pytest
from django.urls import reverse

from finance.models import Invoice, ManualAction
from finance.syncstate import SyncStatus
from sync.models import BulkJob, ProblemEvent
from sync.services import actions
from tests.sync.uifactories import park, problem_invoices


def action_url(record, action):
    return reverse("sync:record_action", args=[record.sync_type, record.pk, action])


HTMX = {"HTTP_HX_REQUEST": "true"}


def test_it_sends_anonymous_users_to_login(client, company):
    [invoice] = problem_invoices(1)
    response = client.post(action_url(invoice, "clear"))
    assert response.status_code == 302


def test_it_forbids_support_from_acting(client, support_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(support_user)
    # Support may look at the page but only Finance resolves problems.
    assert client.post(action_url(invoice, "clear")).status_code == 403
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PROBLEM


def test_it_forbids_outsiders(client, outsider, company):
    [invoice] = problem_invoices(1)
    client.force_login(outsider)
    assert client.post(action_url(invoice, "resync")).status_code == 403


def test_it_refuses_get(client, finance_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(finance_user)
    assert client.get(action_url(invoice, "clear")).status_code == 405


def test_it_clears_and_audits(client, finance_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(finance_user)
    response = client.post(action_url(invoice, "clear"))
    invoice.refresh_from_db()
    assert response.status_code == 302  # no-JS fallback redirects back
    assert invoice.sync_status == SyncStatus.CLEARED
    # The reason stays so that Undo can restore it.
    assert invoice.problem_reason == "missing_item_mapping"
    action = ManualAction.objects.get(record_type="invoice", record_id=invoice.pk)
    assert (action.kind, action.user, action.before["sync_status"]) == (
        "clear",
        finance_user,
        "problem",
    )


def test_it_resyncs_and_enqueues_after_commit(
    client, finance_user, company, django_capture_on_commit_callbacks
):
    [invoice] = problem_invoices(1, attempts=5)
    client.force_login(finance_user)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(action_url(invoice, "resync"), **HTMX)
    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.attempts, invoice.problem_reason) == ("pending", 0, "")
    assert ManualAction.objects.filter(kind="resync", record_id=invoice.pk).exists()
    # The push is queued only once the transaction commits.
    assert callbacks


def test_it_refuses_to_resync_a_record_in_flight(finance_user, company):
    [invoice] = problem_invoices(1, status=SyncStatus.IN_FLIGHT)
    with pytest.raises(actions.ActionRefused, match="right now"):
        actions.record_resync(record=invoice, user=finance_user)


def test_it_marks_paid_without_sync(client, finance_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(finance_user)
    client.post(action_url(invoice, "mark-paid"), **HTMX)
    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.status) == ("paid_outside", Invoice.Status.PAID)
    assert ProblemEvent.objects.filter(record_id=invoice.pk, how="mark_paid").exists()
    assert ManualAction.objects.filter(kind="mark_paid", record_id=invoice.pk).exists()


def test_it_undoes_a_clear_with_the_old_reason(client, finance_user, company):
    [invoice] = problem_invoices(1, reason="duplicate_doc_number")
    actions.record_clear(record=invoice, user=finance_user)
    client.force_login(finance_user)
    client.post(action_url(invoice, "undo-clear"), {"from": "resolved", "tab": "invoice"}, **HTMX)
    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.problem_reason) == ("problem", "duplicate_doc_number")
    assert ManualAction.objects.filter(kind="undo_clear", record_id=invoice.pk).exists()


def test_it_answers_htmx_with_an_empty_row_and_new_counts(client, finance_user, company):
    first, _ = problem_invoices(2)
    client.force_login(finance_user)
    html = client.post(action_url(first, "clear"), {"tab": "invoice"}, **HTMX).content.decode()
    # The row leaves the table (no <tr> for it); the tabs swap out of band with one fewer.
    assert f'id="row-invoice-{first.pk}"' not in html
    assert 'hx-swap-oob="true"' in html
    assert 'data-testid="count-invoice">1<' in html
    assert "cleared without sync" in html


def test_it_answers_a_refused_action_with_the_row_and_the_reason(client, finance_user, company):
    [invoice] = problem_invoices(1, status=SyncStatus.PAID_OUTSIDE)
    client.force_login(finance_user)
    html = client.post(action_url(invoice, "clear"), **HTMX).content.decode()
    # Paid outside cannot be cleared: the clerk is told so and nothing changes.
    assert "toast-error" in html and "Cannot clear" in html
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PAID_OUTSIDE


def test_it_refuses_mark_paid_on_a_customer(client, finance_user, company):
    from tests.sync.uifactories import CustomerFactory

    customer = park(CustomerFactory())
    client.force_login(finance_user)
    assert client.post(action_url(customer, "mark-paid")).status_code == 404


def test_it_runs_a_bulk_clear_to_100_percent(client, finance_user, company):
    invoices = problem_invoices(3)
    client.force_login(finance_user)
    response = client.post(
        reverse("sync:bulk"),
        {"action": "clear", "type": "invoice", "ids": [i.pk for i in invoices]},
        **HTMX,
    )
    job = BulkJob.objects.get()
    assert 'role="progressbar"' in response.content.decode()
    actions.bulk_run(job_id=job.pk)  # what the Celery task does
    html = client.get(reverse("sync:bulk_progress", args=[job.pk]), **HTMX).content.decode()
    assert 'aria-valuenow="100"' in html
    # A finished bar stops polling.
    assert "every 500ms" not in html
    assert set(Invoice.objects.values_list("sync_status", flat=True)) == {"cleared"}


def test_it_keeps_going_when_one_bulk_record_fails(finance_user, company):
    good, bad = problem_invoices(2)
    Invoice.objects.filter(pk=bad.pk).update(sync_status=SyncStatus.SYNCED)
    job = actions.bulk_start(
        company=company,
        action="clear",
        sync_type="invoice",
        ids=[bad.pk, good.pk],
        user=finance_user,
    )
    job = actions.bulk_run(job_id=job.pk)
    assert (job.done, job.failed, job.percent) == (1, 1, 100)
    assert "Cannot clear" in job.errors[0]["error"]


def test_it_runs_the_bulk_job_after_commit(
    client, finance_user, company, django_capture_on_commit_callbacks, monkeypatch
):
    from sync.tasks import run_bulk_job

    # Run the real task body in this process (what a worker would do) once the view commits.
    monkeypatch.setattr(run_bulk_job, "delay", lambda job_id: run_bulk_job.apply(args=[job_id]))
    invoices = problem_invoices(2)
    client.force_login(finance_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("sync:bulk"),
            {"action": "clear", "type": "invoice", "ids": [i.pk for i in invoices]},
        )
    job = BulkJob.objects.get()
    assert (job.done, job.percent) == (2, 100)


def test_it_asks_for_a_selection_before_bulk(client, finance_user, company):
    client.force_login(finance_user)
    html = client.post(
        reverse("sync:bulk"), {"action": "clear", "type": "invoice"}, **HTMX
    ).content.decode()
    assert "Select at least one record first." in html
    assert not BulkJob.objects.exists()


def test_it_forbids_support_from_bulk(client, support_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(support_user)
    response = client.post(
        reverse("sync:bulk"), {"action": "clear", "type": "invoice", "ids": [invoice.pk]}
    )
    assert response.status_code == 403
