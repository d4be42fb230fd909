"""Load documents attached to the QuickBooks invoice that bills them (Attachable uploads)."""

import pytest
import requests
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from finance.documents import load_document_add, load_document_replace
from finance.models import InvoiceAttachment, LoadDocument
from finance.services import finance_settings_get, finance_settings_update
from finance.syncstate import SyncStatus
from sync.models import SyncAttempt
from sync.services import actions, engine
from tests.finance.factories import ChargeCodeFactory
from tests.sync.conftest import wait_for
from tests.sync.helpers import invoice_with

pytestmark = pytest.mark.django_db(transaction=True)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def mapped_code():
    code = ChargeCodeFactory()
    type(code).objects.filter(pk=code.pk).update(sync_status=SyncStatus.PENDING)
    assert engine.push_record(sync_type="item", pk=code.pk) == "synced"
    code.refresh_from_db()
    return code


def attachables_of(qbo, invoice):
    return [
        a
        for a in qbo.objects("Attachable")
        if any(r["EntityRef"]["value"] == invoice.qb_id for r in a.get("AttachableRef", []))
    ]


def push_attachments(invoice):
    outcomes = []
    for attachment in InvoiceAttachment.objects.filter(invoice=invoice):
        outcomes.append(engine.push_record(sync_type="attachment", pk=attachment.pk))
    return outcomes


def test_a_pod_reaches_the_invoice_in_quickbooks_and_other_kinds_do_not(qbo):
    invoice = invoice_with(mapped_code())
    load = invoice.charge_sets.get().load
    pod = load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod-1.pdf"))
    load_document_add(load=load, kind="scale_ticket", file=ContentFile(PDF, name="scale.pdf"))
    # Not in QuickBooks yet: nothing to attach to.
    assert not InvoiceAttachment.objects.exists()

    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    invoice.refresh_from_db()
    assert push_attachments(invoice) == ["synced"]  # the POD; the scale ticket is not selected

    [remote] = attachables_of(qbo, invoice)
    assert remote["FileName"] == "pod-1.pdf" and remote["ContentType"] == "application/pdf"
    assert remote["AttachableRef"][0]["EntityRef"] == {"type": "Invoice", "value": invoice.qb_id}
    assert remote["AttachableRef"][0]["IncludeOnSend"] is False
    assert requests.get(remote["TempDownloadUri"], timeout=10).content == PDF
    attachment = InvoiceAttachment.objects.get()
    assert attachment.document == pod and attachment.qb_id == remote["Id"]
    assert attachment.sync_status == SyncStatus.SYNCED
    attempt = SyncAttempt.objects.get(record_type="attachment", record_id=attachment.pk)
    assert attempt.request_id == engine.request_id(
        qbo.realm, "attachment", attachment.pk, 1, "create"
    )

    # A document added once the invoice is in QuickBooks is attached too; pushing again writes
    # nothing new.
    load_document_add(load=load, kind="bol", file=ContentFile(PDF, name="bol.pdf"))
    assert sorted(push_attachments(invoice)) == ["not-claimed", "synced"]  # the POD is done
    assert sorted(a["FileName"] for a in attachables_of(qbo, invoice)) == ["bol.pdf", "pod-1.pdf"]


def test_a_refused_file_is_a_problem_and_its_fix_attaches_it_once(qbo):
    invoice = invoice_with(mapped_code())
    load = invoice.charge_sets.get().load
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    # Imported with a type QuickBooks does not take (the TMS's own upload refuses it).
    document = load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod.pdf"))
    LoadDocument.objects.filter(pk=document.pk).update(content_type="application/x-msdownload")
    invoice.refresh_from_db()

    assert push_attachments(invoice) == ["problem"]
    attachment = InvoiceAttachment.objects.get()
    assert attachment.sync_status == SyncStatus.PROBLEM
    assert attachment.problem_reason == "attachment_refused"
    assert attachment.last_error_code == "6000" and "Unsupported" in attachment.last_error_message
    assert attachables_of(qbo, invoice) == []

    # The fix: the file with its right type, and re-sync (same version, same requestid).
    LoadDocument.objects.filter(pk=document.pk).update(content_type="application/pdf")
    actions.record_resync(record=attachment, user=None)
    assert push_attachments(invoice) == ["synced"]
    assert len(attachables_of(qbo, invoice)) == 1

    # A replaced file is another upload (QuickBooks cannot replace bytes); never a duplicate of
    # the same version.
    load_document_replace(document=document, file=ContentFile(PDF + b" ", name="pod-v2.pdf"))
    assert push_attachments(invoice) == ["synced"]
    assert sorted(a["FileName"] for a in attachables_of(qbo, invoice)) == ["pod-v2.pdf", "pod.pdf"]


def test_a_missing_file_is_its_own_problem(qbo):
    invoice = invoice_with(mapped_code())
    load = invoice.charge_sets.get().load
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    document = load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod.pdf"))
    document.file.storage.delete(document.file.name)
    invoice.refresh_from_db()
    assert push_attachments(invoice) == ["problem"]
    assert InvoiceAttachment.objects.get().problem_reason == "attachment_file_missing"


def test_the_tms_refuses_what_quickbooks_would(settings):
    from tests.finance.factories import LoadFactory

    load = LoadFactory()
    with pytest.raises(ValidationError, match="does not take .exe"):
        load_document_add(load=load, kind="pod", file=ContentFile(b"MZ", name="pod.exe"))
    with pytest.raises(ValidationError, match="empty"):
        load_document_add(load=load, kind="pod", file=ContentFile(b"", name="pod.pdf"))
    settings.LOAD_DOCUMENT_MAX_BYTES = 10
    with pytest.raises(ValidationError, match="at most 10"):
        load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod.pdf"))
    assert not LoadDocument.objects.exists()


def test_a_combined_invoice_gets_each_loads_documents_through_the_worker(qbo, celery_worker):
    company = finance_settings_get(company=qbo.connection.company)
    finance_settings_update(settings_row=company, fields={"attachments_on_send": True}, user=None)
    invoice = invoice_with(mapped_code(), loads=2)
    for n, charge_set in enumerate(invoice.charge_sets.all(), 1):
        load_document_add(
            load=charge_set.load, kind="pod", file=ContentFile(PDF, name=f"pod-{n}.pdf")
        )
    invoice.refresh_from_db()
    engine.push_record(sync_type="invoice", pk=invoice.pk)  # its attachments follow by worker
    invoice.refresh_from_db()

    def attached():
        return InvoiceAttachment.objects.filter(sync_status=SyncStatus.SYNCED).count() == 2

    wait_for(attached, timeout=30, message="both PODs attached")
    remote = attachables_of(qbo, invoice)
    assert sorted(a["FileName"] for a in remote) == ["pod-1.pdf", "pod-2.pdf"]
    assert all(a["AttachableRef"][0]["IncludeOnSend"] for a in remote)


def test_a_kind_ticked_again_brings_back_the_attachments_skipped_meanwhile(qbo):
    invoice = invoice_with(mapped_code())
    load = invoice.charge_sets.get().load
    assert engine.push_record(sync_type="invoice", pk=invoice.pk) == "synced"
    invoice.refresh_from_db()
    load_document_add(load=load, kind="pod", file=ContentFile(PDF, name="pod.pdf"))
    company = finance_settings_get(company=invoice.company)
    finance_settings_update(
        settings_row=company, fields={"attach_document_kinds": ["bol"]}, user=None
    )
    assert push_attachments(invoice) == ["skipped"]  # PODs unticked before it went
    assert not attachables_of(qbo, invoice)

    company.refresh_from_db()
    finance_settings_update(
        settings_row=company, fields={"attach_document_kinds": ["bol", "pod"]}, user=None
    )

    attachment = InvoiceAttachment.objects.get()
    assert attachment.sync_status == SyncStatus.PENDING
    assert push_attachments(invoice) == ["synced"]
    assert [a["FileName"] for a in attachables_of(qbo, invoice)] == ["pod.pdf"]
