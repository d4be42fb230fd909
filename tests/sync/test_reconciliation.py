"""Reconciliation against the live emulator: each kind of difference planted is found (and
nothing on a clean push of the demo data), reads stay few, the nightly run opens Problem Sync
rows for new differences only, and the page and CSV show it."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Min
from django.test import Client
from django.utils import timezone

from finance.models import Bill, ChargeCode, CreditMemo, Invoice, Membership, PayCode, Payment
from finance.services import finance_settings_get
from finance.syncstate import SyncStatus
from sync.models import ApiUsage
from sync.services import actions, engine, reconcile
from sync.services.batch import push_all_now
from sync.services.engine import SyncContext
from sync.services.mapping import codes_send
from tests.sync.helpers import invoice_with
from tests.sync.test_pull import receive_in_quickbooks
from tests.sync.test_quickbooks_changes import (
    edit_first_line_in_quickbooks,
    quickbooks_op,
    synced_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.QBO_RATE_LIMIT_ENABLED = False


def reads() -> int:
    return sum(ApiUsage.objects.filter(purpose="reconcile").values_list("coreplus", flat=True))


def whole_period():
    return date.today() - timedelta(days=300), date.today() + timedelta(days=1)


def by_number(rep, number):
    return [line for line in rep.lines if line.number == number]


def test_each_kind_of_difference_planted_is_found(qbo):
    fs = finance_settings_get(company=qbo.connection.company)
    fs.pull_payments = False  # a payment applied in QuickBooks stays unknown to the TMS
    fs.save()
    agrees, amount, paid, voided, deleted, void_tms, missing = (
        synced_invoice(qbo) for _ in range(7)
    )
    code = agrees.charge_sets.first().lines.first().charge_code
    unsent = invoice_with(code, lines=1, customer=agrees.customer)  # approved, not sent yet
    start, end = whole_period()
    reconcile.refresh_and_report(company=agrees.company, start=start, end=end)  # last night's

    edit_first_line_in_quickbooks(qbo, amount, 123.45)
    receive_in_quickbooks(qbo, paid, Decimal("10.00"))
    quickbooks_op(qbo, voided, "void")
    quickbooks_op(qbo, deleted, "delete")
    Invoice.objects.filter(pk=void_tms.pk).update(status=Invoice.Status.VOID)  # void not sent
    Invoice.objects.filter(pk=missing.pk).update(qb_id="987654")  # points at nothing
    item = code.qb_id
    foreign = SyncContext.for_company(agrees.company_id).session.create(
        "Invoice",
        {
            "CustomerRef": {"value": agrees.customer.qb_id},
            "DocNumber": "QB-ONLY-1",
            "TxnDate": date.today().isoformat(),
            "Line": [
                {
                    "Amount": 50.0,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": 50},
                }
            ],
        },
        request_id="test-foreign-invoice",
    )

    rep, spent = reconcile.refresh_and_report(company=agrees.company, start=start, end=end)

    kinds = {
        line.number: line.kind
        for line in rep.lines
        if line.sync_type == "invoice" and line.record_id is not None
    }
    only_in_quickbooks = {line.number for line in rep.lines if line.kind == "only_in_quickbooks"}
    assert kinds[agrees.doc_number] == ""
    assert kinds[amount.doc_number] == "amount_differs"
    assert kinds[paid.doc_number] == "paid_differs"
    assert kinds[voided.doc_number] == "voided_in_quickbooks"
    assert kinds[deleted.doc_number] == "deleted_in_quickbooks"
    assert kinds[void_tms.doc_number] == "voided_in_tms"
    assert kinds[missing.doc_number] == "missing_in_quickbooks"
    assert kinds[unsent.doc_number] == "missing_in_quickbooks"
    # QuickBooks' own invoice, and the one our record no longer points at.
    assert {"QB-ONLY-1", missing.doc_number} <= only_in_quickbooks
    # The payment received in QuickBooks is not in the TMS either.
    payments = [line for line in rep.lines if line.sync_type == "payment"]
    assert [p.kind for p in payments] == ["only_in_quickbooks"]
    assert len(only_in_quickbooks) == 3
    # Both amounts beside each other; differences come first.
    line = by_number(rep, amount.doc_number)[0]
    assert line.tms_amount == amount.total and line.qb_amount == Decimal("123.45")
    paid_line = by_number(rep, paid.doc_number)[0]
    assert paid_line.qb_balance == paid.total - 10 and paid_line.tms_balance == paid.total
    assert [bool(line.kind) for line in rep.lines] == sorted(
        (bool(line.kind) for line in rep.lines), reverse=True
    )
    assert rep.counts()["missing_in_quickbooks"] == 2
    assert foreign["Id"] in {line.qb_id for line in rep.differences}
    # Totals on each side: QuickBooks holds the foreign invoice and the 10.00 received.
    totals = rep.totals()
    assert Decimal(totals["invoiced"]["quickbooks"]) != Decimal(totals["invoiced"]["tms"])
    assert totals["open_receivables"]["differs"] == "True"
    # One query per type, dated, paged, for the first fill; then one change feed call (which
    # alone tells a deletion: a query does not return deleted objects).
    assert spent == 1 and reads() == 4 + 1


def test_a_clean_push_of_the_demo_data_shows_no_difference(qbo):
    company = qbo.connection.company
    call_command("seed_demo", "--invoices", "25", "--company", company.name, stdout=StringIO())
    codes_send(codes=ChargeCode.objects.filter(company=company))
    codes_send(codes=PayCode.objects.filter(company=company))
    for _ in range(3):  # dependencies first, then whatever waited on them
        push_all_now(company_id=company.pk)
    for model in (Invoice, CreditMemo, Payment, Bill):
        assert not model.objects.exclude(
            sync_status__in=[SyncStatus.SYNCED, SyncStatus.SKIPPED]
        ).exists(), model

    start = min(
        Invoice.objects.aggregate(d=Min("invoice_date"))["d"],
        Bill.objects.aggregate(d=Min("bill_date"))["d"],
        Payment.objects.aggregate(d=Min("payment_date"))["d"],
    )
    rep, spent = reconcile.refresh_and_report(
        company=company, start=start, end=date.today() + timedelta(days=60)
    )

    assert len(rep.lines) > 60
    assert {line.sync_type for line in rep.lines} == {"invoice", "creditmemo", "payment", "bill"}
    assert rep.differences == [], [(d.kind, d.sync_type, d.number, d.note) for d in rep.differences]
    assert all(both["differs"] == "False" for both in rep.totals().values()), rep.totals()
    assert spent == 4


def test_later_refreshes_read_only_what_changed(qbo):
    first = synced_invoice(qbo)
    start, end = whole_period()
    reconcile.refresh_and_report(company=first.company, start=start, end=end)
    before = reads()

    second = synced_invoice(qbo)  # our own push: in the change feed, not bought again
    edit_first_line_in_quickbooks(qbo, first, 77.0)
    rep, spent = reconcile.refresh_and_report(company=first.company, start=start, end=end)

    assert spent == 1 == reads() - before  # one change data capture call
    assert by_number(rep, first.doc_number)[0].kind == "amount_differs"
    assert by_number(rep, second.doc_number)[0].kind == ""
    # An earlier period than ever read: only that slice is queried (one call per type), then CDC.
    rep, spent = reconcile.refresh_and_report(
        company=first.company, start=start - timedelta(days=30), end=end
    )
    assert spent == 5


def test_the_nightly_run_opens_problem_rows_for_new_differences_only(qbo, settings):
    settings.RECONCILE_HOUR = 0
    amount, voided, agrees = synced_invoice(qbo), synced_invoice(qbo), synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, amount, 99.0)
    quickbooks_op(qbo, voided, "void")
    now = timezone.now()

    claimed = reconcile.reconcile_due(now=now)
    assert len(claimed) == 1 and reconcile.reconcile_due(now=now) == []  # once a day
    run = reconcile.run_nightly(run_id=claimed[0])

    assert run.error == "" and run.new_problems == 2 and run.documents == 3
    amount.refresh_from_db()
    voided.refresh_from_db()
    agrees.refresh_from_db()
    assert (amount.sync_status, amount.problem_reason) == (
        SyncStatus.PROBLEM,
        "reconcile_amount_differs",
    )
    assert "99" in amount.last_error_message
    assert (voided.sync_status, voided.problem_reason) == (SyncStatus.PROBLEM, "reconcile_voided")
    assert agrees.sync_status == SyncStatus.SYNCED
    # QuickBooks' version is on the row: the person chooses, as for a change a pull saw.
    assert amount.qb_drift["changes"]
    actions.record_clear(record=amount, user=None)

    # The next night: the same differences are not new; nothing is opened again.
    tomorrow = now + timedelta(days=1)
    run2 = reconcile.run_nightly(run_id=reconcile.reconcile_due(now=tomorrow)[0])
    assert run2.new_problems == 0 and len(run2.differences) == 2
    amount.refresh_from_db()
    assert amount.sync_status == SyncStatus.CLEARED
    assert run2.reads == 1  # the change feed since last night


def test_overwrite_from_a_reconciliation_row_sends_the_tms_version(qbo, settings):
    settings.RECONCILE_HOUR = 0
    invoice = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 55.0)
    reconcile.run_nightly(run_id=reconcile.reconcile_due()[0])
    invoice.refresh_from_db()
    assert invoice.problem_reason == "reconcile_amount_differs"

    actions.record_overwrite_quickbooks(record=invoice, user=None)
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"

    assert Decimal(str(qbo.get("Invoice", invoice.qb_id)["TotalAmt"])) == invoice.total


def test_a_nightly_run_without_quickbooks_says_so_and_opens_nothing(qbo, settings):
    settings.RECONCILE_HOUR = 0
    invoice = synced_invoice(qbo)
    qbo.faults(error_rate=1.0, error_style="gateway")
    run = reconcile.run_nightly(run_id=reconcile.reconcile_due()[0])
    qbo.clear_faults()

    assert run.error.startswith("QuickBooks could not be read") and run.finished_at
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.SYNCED


def test_the_page_shows_differences_first_and_exports_csv(qbo, finance_user, outsider):
    invoice = synced_invoice(qbo)
    other = synced_invoice(qbo)
    edit_first_line_in_quickbooks(qbo, invoice, 42.0)
    Membership.objects.get_or_create(user=finance_user, company=invoice.company)
    client = Client()
    client.force_login(finance_user)
    start, end = whole_period()
    period = {"start": start.isoformat(), "end": end.isoformat()}

    before = client.get("/sync/reconciliation/", period)
    assert before.status_code == 200 and "has not been read" in before.content.decode()
    refreshed = client.post("/sync/reconciliation/refresh/", period, follow=True)
    page = refreshed.content.decode()
    assert "metered read" in page and "Amount differs" in page
    assert page.index(invoice.doc_number) < page.index(other.doc_number)

    exported = client.get("/sync/reconciliation/", {**period, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0][0] == "difference"
    assert rows[1][:3] == ["Amount differs", "Invoice", invoice.doc_number]
    assert any(r[0] == "Agrees" and r[2] == other.doc_number for r in rows)
    assert any(r[:2] == ["Total", "Open receivables"] for r in rows)

    bad = client.get("/sync/reconciliation/", {"start": end.isoformat(), "end": start.isoformat()})
    assert "ends before it starts" in bad.content.decode()
    outsider_client = Client()
    outsider_client.force_login(outsider)
    assert outsider_client.get("/sync/reconciliation/").status_code == 403
    assert outsider_client.post("/sync/reconciliation/refresh/", period).status_code == 403


def test_problem_sync_points_at_documents_only_in_quickbooks(qbo, finance_user, settings):
    settings.RECONCILE_HOUR = 0
    invoice = synced_invoice(qbo)
    Membership.objects.get_or_create(user=finance_user, company=invoice.company)
    client = Client()
    client.force_login(finance_user)
    assert "reconcile-banner" not in client.get("/sync/problems/").content.decode()
    receive_in_quickbooks(qbo, invoice, Decimal("5.00"))  # a payment the TMS never heard of
    finance_settings_get(company=invoice.company).__class__.objects.filter(
        company=invoice.company
    ).update(pull_payments=False)

    run = reconcile.run_nightly(run_id=reconcile.reconcile_due()[0])

    assert run.counts["only_in_quickbooks"] == 1 and run.counts["paid_differs"] == 1
    page = client.get("/sync/problems/").content.decode()
    assert "found 1 document in QuickBooks that the TMS does not have" in page
    assert f"start={run.period_start:%Y-%m-%d}" in page


def test_a_difference_acknowledged_is_listed_apart_and_not_raised_at_night(
    qbo, finance_user, outsider, settings
):
    settings.RECONCILE_HOUR = 0
    invoice = synced_invoice(qbo)
    receive_in_quickbooks(qbo, invoice, Decimal("5.00"))  # a deposit kept in QuickBooks only
    invoice.company.finance_settings.__class__.objects.filter(company=invoice.company).update(
        pull_payments=False
    )
    Membership.objects.get_or_create(user=finance_user, company=invoice.company)
    client = Client()
    client.force_login(finance_user)
    start, end = whole_period()
    query = f"start={start}&end={end}"
    rep, _ = reconcile.refresh_and_report(company=invoice.company, start=start, end=end)
    [deposit] = [line for line in rep.differences if line.sync_type == "payment"]

    answer = client.post(
        "/sync/reconciliation/acknowledge/",
        {"key": deposit.key, "query": query, "note": "customer deposit"},
        follow=True,
    )
    page = answer.content.decode()
    assert "Acknowledged: listed apart" in page and "customer deposit" in page
    rep = reconcile.report(company=invoice.company, start=start, end=end)
    assert [line.sync_type for line in rep.differences] == ["invoice"]  # its paid amount
    assert [line.key for line in rep.acknowledged] == [deposit.key]
    assert finance_user.username in rep.acknowledged[0].acknowledged
    run = reconcile.run_nightly(run_id=reconcile.reconcile_due()[0])
    assert run.counts["only_in_quickbooks"] == 0
    assert "reconcile-banner" not in client.get("/sync/problems/").content.decode()

    refused = client.post("/sync/reconciliation/acknowledge/", {"key": "nonsense"}, follow=True)
    assert "not a difference of this report" in refused.content.decode()
    outsider_client = Client()
    outsider_client.force_login(outsider)
    assert (
        outsider_client.post("/sync/reconciliation/acknowledge/", {"key": deposit.key}).status_code
        == 403
    )

    client.post("/sync/reconciliation/acknowledge/", {"key": deposit.key, "reopen": "1"})
    rep = reconcile.report(company=invoice.company, start=start, end=end)
    assert deposit.key in {line.key for line in rep.differences} and not rep.acknowledged
