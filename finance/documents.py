"""Load documents (POD, BOL…) and their attachment to the QuickBooks invoices that bill them.

A document is stored through Django's storage API (STORAGES["default"]: files under
MEDIA_ROOT in the demo). An `InvoiceAttachment` (a synced record, sync type "attachment") is
one document on one invoice; it is made when both exist and the invoice is in QuickBooks (the
document arrives after the invoice, or the invoice after the document: its settle calls
`invoice_attachments_ensure`), for the kinds Finance settings select. A change of those kinds
applies to attachments made from then on, and a kind ticked again sends its attachments skipped
meanwhile; a document deleted in the TMS leaves QuickBooks' copy where it is.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import transaction

from finance.models import Invoice, InvoiceAttachment, Load, LoadDocument
from finance.services import _announce, finance_settings_get, record_mark_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# What QuickBooks Online takes as an attachment, by extension (the content type is ours, not
# the browser's): its documented list, less the design formats nobody scans a POD into.
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xml": "text/xml",
    ".rtf": "application/rtf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def document_content_type(*, filename: str, size: int) -> str:
    """The content type QuickBooks will be told, or a ValidationError saying what is wrong."""
    extension = os.path.splitext(filename)[1].lower()
    content_type = CONTENT_TYPES.get(extension)
    if content_type is None:
        allowed = ", ".join(sorted(e.lstrip(".").upper() for e in CONTENT_TYPES))
        raise ValidationError(
            {"file": f"QuickBooks does not take {extension or 'files without an extension'} "
             f"attachments. Upload one of: {allowed}."}
        )  # fmt: skip
    if size <= 0:
        raise ValidationError({"file": "The file is empty."})
    limit = settings.LOAD_DOCUMENT_MAX_BYTES
    if size > limit:
        raise ValidationError(
            {"file": f"The file is {size:,} bytes; QuickBooks takes at most {limit:,}."}
        )
    return content_type


@transaction.atomic
def load_document_add(
    *, load: Load, kind: str, file: File, user: User | None = None, filename: str = ""
) -> LoadDocument:
    """Store a document with its load; attach it to the load's invoices already in QuickBooks."""
    name = os.path.basename(filename or file.name or "document")
    content_type = document_content_type(filename=name, size=file.size or 0)
    document = LoadDocument(
        company_id=load.company_id,
        load=load,
        kind=kind,
        original_filename=name[:200],
        content_type=content_type,
        size=file.size or 0,
        uploaded_by=user,
    )
    document.full_clean(exclude=["file"])
    document.file.save(name, file, save=False)
    document.save()
    for invoice in Invoice.objects.filter(charge_sets__load=load).exclude(qb_id="").distinct():
        invoice_attachments_ensure(invoice=invoice)
    return document


@transaction.atomic
def load_document_replace(
    *, document: LoadDocument, file: File, user: User | None = None, filename: str = ""
) -> LoadDocument:
    """A corrected file (the scan QuickBooks refused, a better copy): its attachments go again.
    One already in QuickBooks gets the new file as another Attachable (QuickBooks cannot
    replace an attachment's bytes); the old one stays there."""
    name = os.path.basename(filename or file.name or document.original_filename)
    content_type = document_content_type(filename=name, size=file.size or 0)
    old = document.file.name
    document.file.save(name, file, save=False)
    document.original_filename = name[:200]
    document.content_type = content_type
    document.size = file.size or 0
    document.uploaded_by = user
    document.save()
    if old and old != document.file.name:
        transaction.on_commit(lambda: document.file.storage.delete(old))
    for attachment in document.attachments.all():
        record_mark_changed(record=attachment)
    return document


def invoice_attachments_ensure(*, invoice: Invoice) -> list[InvoiceAttachment]:
    """The attachments an invoice in QuickBooks should have and does not yet: each document of
    a selected kind on each of its loads (a combined invoice has several loads). New ones are
    pending and announced; existing ones are left as they are."""
    if not invoice.qb_id:
        return []
    kinds = finance_settings_get(company=invoice.company).attach_document_kinds or []
    if not kinds:
        return []
    documents = LoadDocument.objects.filter(
        load__charge_sets__invoice=invoice, kind__in=kinds
    ).exclude(attachments__invoice=invoice)
    created = [
        InvoiceAttachment.objects.get_or_create(
            company_id=invoice.company_id, invoice=invoice, document=document
        )[0]
        for document in documents.distinct()
    ]
    if created:
        _announce(created)
    return created
