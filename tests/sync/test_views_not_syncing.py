"""Not syncing: every skipped record is listed with why, and finance can send it from there."""

from django.urls import reverse

from finance.models import ManualAction
from finance.services import finance_settings_get
from finance.syncstate import SyncStatus
from tests.sync.uifactories import problem_invoices

URL = reverse("sync:not_syncing")


def sync_now_url(invoice):
    return reverse("sync:record_action", args=["invoice", invoice.pk, "sync-now"])


def skipped_invoice(message="Sync of this record type is switched off in Finance settings."):
    return problem_invoices(1, status=SyncStatus.SKIPPED, last_error_message=message)[0]


def test_it_lists_skipped_records_with_the_reason_and_nothing_else(client, finance_user, company):
    skipped = skipped_invoice("Draft: syncs when approved.")
    [problem] = problem_invoices(1)
    [pending] = problem_invoices(1, status=SyncStatus.PENDING)
    client.force_login(finance_user)

    html = client.get(URL).content.decode()

    assert f"skipped-invoice-{skipped.pk}" in html and "Draft: syncs when approved." in html
    assert f"skipped-invoice-{problem.pk}" not in html
    assert f"skipped-invoice-{pending.pk}" not in html
    assert 'data-testid="count-invoice">1<' in html


def test_sync_now_queues_it_and_audits_who_asked(client, finance_user, company):
    invoice = skipped_invoice()
    client.force_login(finance_user)

    response = client.post(sync_now_url(invoice), {"from": "not_syncing"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and "queued to be sent to QuickBooks" in response.text
    assert f"skipped-invoice-{invoice.pk}" not in response.text  # the row leaves the list
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING and invoice.last_error_message == ""
    assert ManualAction.objects.filter(record_id=invoice.pk, user=finance_user).exists()


def test_sync_now_says_why_not_while_the_type_is_switched_off(client, finance_user, company):
    fs = finance_settings_get(company=company)
    fs.sync_invoices = False
    fs.save()
    invoice = skipped_invoice()
    client.force_login(finance_user)

    response = client.post(sync_now_url(invoice), {"from": "not_syncing"}, HTTP_HX_REQUEST="true")

    assert "Invoices are switched off in Finance settings" in response.text
    assert f"skipped-invoice-{invoice.pk}" in response.text  # still listed
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.SKIPPED


def test_support_sees_the_list_without_buttons(client, support_user, company):
    invoice = skipped_invoice()
    client.force_login(support_user)

    html = client.get(URL).content.decode()

    assert f"skipped-invoice-{invoice.pk}" in html and "sync-now" not in html
    assert client.post(sync_now_url(invoice), {"from": "not_syncing"}).status_code == 403
