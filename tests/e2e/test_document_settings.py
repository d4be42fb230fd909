"""Finance → QuickBooks in a real browser: which load documents go with invoices."""

import pytest
from playwright.sync_api import expect

from finance.services import finance_settings_get

# serialized_rollback: live_server flushes tables; this puts back the migrations' rows.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_document_kind_ticked_on_the_settings_page_is_saved(
    login, live_server, finance_user, company
):
    assert finance_settings_get(company=company).attach_document_kinds == ["pod", "bol"]
    page = login(finance_user)
    page.goto(live_server.url + "/finance/quickbooks/")
    kinds = page.get_by_test_id("document-kinds")
    expect(kinds.get_by_label("Proof of delivery (POD)")).to_be_checked()
    expect(kinds.get_by_label("Scale ticket")).not_to_be_checked()
    kinds.get_by_label("Scale ticket").check()
    kinds.get_by_label("Bill of lading (BOL)").uncheck()
    kinds.get_by_label("Include the attachments when QuickBooks emails the invoice").check()
    page.get_by_role("button", name="Save options").click()
    expect(page.locator(".toast")).to_contain_text("saved")
    row = finance_settings_get(company=company)
    assert row.attach_document_kinds == ["pod", "scale_ticket"]
    assert row.attachments_on_send is True
    # The page shows what was saved.
    page.goto(live_server.url + "/finance/quickbooks/")
    expect(page.get_by_test_id("document-kinds").get_by_label("Scale ticket")).to_be_checked()
    expect(
        page.get_by_test_id("document-kinds").get_by_label("Bill of lading (BOL)")
    ).not_to_be_checked()


def test_a_refused_document_is_on_problem_sync_and_its_resync_attaches_it(
    login, live_server, finance_user, qbo, celery_worker
):
    from django.core.files.base import ContentFile

    from finance.documents import load_document_add
    from finance.models import InvoiceAttachment, LoadDocument
    from finance.syncstate import SyncStatus
    from sync.services import engine
    from tests.e2e.conftest import wait_for
    from tests.sync.helpers import invoice_with
    from tests.sync.test_attachments import PDF, attachables_of, mapped_code, push_attachments

    invoice = invoice_with(mapped_code())
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    load = invoice.charge_sets.get().load
    document = load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod.pdf"))
    # Imported with a type QuickBooks does not take.
    LoadDocument.objects.filter(pk=document.pk).update(content_type="application/x-msdownload")
    invoice.refresh_from_db()
    assert push_attachments(invoice) == ["problem"]
    attachment = InvoiceAttachment.objects.get()

    page = login(finance_user)
    page.goto(live_server.url + "/sync/problems/?type=attachment")
    row = page.locator(f"#row-attachment-{attachment.pk}")
    expect(row).to_contain_text("QuickBooks refused the document")
    expect(page.get_by_test_id("count-attachment")).to_have_text("1")

    LoadDocument.objects.filter(pk=document.pk).update(content_type="application/pdf")  # fixed
    row.get_by_role("button", name="Re-sync").click()
    expect(row).to_have_count(0)
    wait_for(
        lambda: InvoiceAttachment.objects.filter(
            pk=attachment.pk, sync_status=SyncStatus.SYNCED
        ).exists(),
        message="the attachment never synced",
    )
    assert [a["FileName"] for a in attachables_of(qbo, invoice)] == ["pod.pdf"]
