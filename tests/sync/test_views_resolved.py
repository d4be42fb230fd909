"""Resolved: every cleared record can be put back, one or many; progress says what became of a
bulk re-sync; the list keeps its filters after a bulk action."""

import pytest
from django.urls import reverse

from finance.syncstate import SyncStatus
from sync.models import BulkJob
from sync.services import actions
from tests.sync.uifactories import park, problem_invoices

pytestmark = pytest.mark.django_db
URL = reverse("sync:resolved")
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_it_lists_every_cleared_record_not_only_the_last_ten(client, finance_user, company):
    cleared = [actions.record_clear(record=i, user=finance_user) for i in problem_invoices(14)]
    [paid] = problem_invoices(1, status=SyncStatus.PAID_OUTSIDE)
    [problem] = problem_invoices(1)
    client.force_login(finance_user)

    html = client.get(URL).content.decode()

    assert all(f"cleared-invoice-{r.pk}" in html for r in cleared)
    assert f"cleared-invoice-{paid.pk}" in html and f"cleared-invoice-{problem.pk}" not in html
    assert html.count("Undo clear</button>") == 14  # paid outside has no clear to undo


def test_undo_from_the_list_puts_it_back_with_its_reason(client, finance_user, company):
    [invoice] = problem_invoices(1, reason="duplicate_doc_number")
    actions.record_clear(record=invoice, user=finance_user)
    client.force_login(finance_user)
    url = reverse("sync:record_action", args=["invoice", invoice.pk, "undo-clear"])

    response = client.post(url, {"from": "resolved_page"}, **HTMX)

    assert "put back on the problem list" in response.text
    assert f"cleared-invoice-{invoice.pk}" not in response.text
    invoice.refresh_from_db()
    assert (invoice.sync_status, invoice.problem_reason) == ("problem", "duplicate_doc_number")


def test_bulk_undo_puts_every_selected_clear_back(client, finance_user, company):
    invoices = [actions.record_clear(record=i, user=finance_user) for i in problem_invoices(3)]
    client.force_login(finance_user)

    client.post(
        reverse("sync:bulk"),
        {"action": "undo-clear", "type": "invoice", "ids": [i.pk for i in invoices],
         "list": "resolved"},
        **HTMX,
    )  # fmt: skip
    actions.bulk_run(job_id=BulkJob.objects.get().pk)  # what the worker does

    statuses = {type(i).objects.get(pk=i.pk).sync_status for i in invoices}
    assert statuses == {SyncStatus.PROBLEM}


def test_recently_resolved_leaves_out_a_clear_that_was_undone(client, finance_user, company):
    [kept, undone] = problem_invoices(2)
    actions.record_clear(record=kept, user=finance_user)
    actions.record_clear(record=undone, user=finance_user)
    actions.record_undo_clear(record=type(undone).objects.get(pk=undone.pk), user=finance_user)
    client.force_login(finance_user)

    html = client.get(reverse("sync:problems")).content.decode()

    assert f"resolved-invoice-{kept.pk}" in html
    assert f"resolved-invoice-{undone.pk}" not in html  # a problem again, not resolved


def test_bulk_resync_progress_tells_queued_synced_and_failed_apart(client, finance_user, company):
    invoices = problem_invoices(4)
    job = actions.bulk_start(
        company=company,
        action="resync",
        sync_type="invoice",
        ids=[i.pk for i in invoices],
        user=finance_user,
    )
    actions.bulk_run(job_id=job.pk)  # all four queued (PENDING)
    park(invoices[0], status=SyncStatus.SYNCED)
    park(invoices[1], status=SyncStatus.PROBLEM, reason="validation")
    client.force_login(finance_user)

    html = client.get(reverse("sync:bulk_progress", args=[job.pk]), **HTMX).content.decode()

    assert "2 queued" in html and "1 synced" in html and "1 failed" in html
    assert "— finished" not in html  # still following the two queued


def test_the_finished_bar_reloads_the_list_with_its_filters(client, finance_user, company):
    invoices = problem_invoices(2, reason="validation")
    client.force_login(finance_user)

    html = client.post(
        reverse("sync:bulk"),
        {"action": "clear", "type": "invoice", "ids": [invoices[0].pk], "list": "problems",
         "list_query": "type=invoice&reason=validation&q=INV&page=3"},
        **HTMX,
    ).content.decode()  # fmt: skip
    actions.bulk_run(job_id=BulkJob.objects.get().pk)
    job = BulkJob.objects.get()
    html = client.get(
        reverse("sync:bulk_progress", args=[job.pk]),
        {"list": "problems", "q": "type=invoice&reason=validation&q=INV&page=3"},
        **HTMX,
    ).content.decode()

    assert "reason=validation" in html and "q=INV" in html and "page=3" not in html


def test_select_all_matching_takes_every_page_of_the_filter(client, finance_user, company):
    matching = problem_invoices(60, reason="validation")
    others = problem_invoices(3, reason="duplicate_doc_number")
    client.force_login(finance_user)
    html = client.get(reverse("sync:problems"), {"reason": "validation"}).content.decode()
    assert "Select all 60 matching" in html

    client.post(
        reverse("sync:bulk"),
        {"action": "clear", "type": "invoice", "ids": [matching[0].pk], "all_matching": "1",
         "list": "problems", "list_query": "type=invoice&reason=validation"},
        **HTMX,
    )  # fmt: skip

    job = BulkJob.objects.get()
    assert sorted(job.record_ids) == sorted(i.pk for i in matching)
    assert not set(job.record_ids) & {i.pk for i in others}
