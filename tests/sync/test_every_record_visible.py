"""No status, action or settings toggle loses a record: each is always in exactly one list a
finance clerk can see, and none is held back by a switch that is on."""

import itertools

import pytest

from finance.models import Invoice
from finance.services import finance_settings_get, finance_settings_update
from finance.syncstate import SyncStatus
from sync import selectors
from sync.mappers import MAPPERS
from sync.services import actions, engine
from tests.finance.factories import InvoiceFactory
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db

PERSON_ACTIONS = {
    "resync": actions.record_resync,
    "clear": actions.record_clear,
    "undo-clear": actions.record_undo_clear,
    "mark-paid": actions.record_mark_paid_outside,
    "sync-now": actions.record_sync_now,
    "overwrite": actions.record_overwrite_quickbooks,
    "accept-void": actions.record_accept_void,
    "accept": actions.record_accept_quickbooks,
    "check": actions.record_check_references,
    "send-new": actions.record_send_again_as_new,
}
REASONS = {
    SyncStatus.PROBLEM: "voided_in_quickbooks",
    SyncStatus.CLEARED: "duplicate_doc_number",
}


def places(invoice):
    """The lists of the product the invoice shows in."""
    company = invoice.company
    lists = {
        "Problem Sync": selectors.problems_list(company=company, sync_type="invoice"),
        "Waiting": selectors.waiting_list(company=company, sync_type="invoice"),
        "Not syncing": selectors.waiting_list(
            company=company, sync_type="invoice", statuses=selectors.NOT_SYNCING
        ),
        "Recently resolved / synced": Invoice.objects.filter(
            sync_status__in=[SyncStatus.SYNCED, SyncStatus.CLEARED, SyncStatus.PAID_OUTSIDE]
        ),
    }
    return [name for name, qs in lists.items() if qs.filter(pk=invoice.pk).exists()]


def switch_invoices(company, on):
    fs = finance_settings_get(company=company)
    finance_settings_update(settings_row=fs, fields={"sync_invoices": on}, user=None)


@pytest.mark.parametrize(
    "status,action,off_during",
    list(itertools.product(list(SyncStatus), PERSON_ACTIONS, [False, True])),
)
def test_no_status_action_or_toggle_loses_a_record(company, status, action, off_during):
    # A skipped invoice is skipped for a reason: here, a draft.
    draft = {"status": Invoice.Status.DRAFT} if status == SyncStatus.SKIPPED else {}
    invoice = park(
        InvoiceFactory(lines=1, **draft),
        status=status,
        reason=REASONS.get(status, "validation"),
        qb_drift={"token": "3", "voided": True, "changes": [], "known": True},
        qb_id="41",
        qb_sync_token="2",
    )
    if off_during:
        switch_invoices(company, on=False)
    try:
        PERSON_ACTIONS[action](record=invoice, user=None)
    except actions.ActionRefused:
        pass  # refusing is fine; losing the record is not
    engine.push_record(sync_type="invoice", pk=invoice.pk)  # no connection: it only decides
    if off_during:
        switch_invoices(company, on=True)

    invoice.refresh_from_db()
    assert len(places(invoice)) == 1, (invoice.sync_status, places(invoice))
    if invoice.sync_status == SyncStatus.SKIPPED:  # only while a reason to hold it still holds
        ctx = engine.SyncContext.for_company(company.pk)
        assert MAPPERS["invoice"].skip_reason(invoice, ctx), invoice.last_error_message
