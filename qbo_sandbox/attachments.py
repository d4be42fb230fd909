"""Intuit's attachment upload: POST /upload (multipart), the file store behind Attachable, and
the download links.

A request carries pairs of parts, `file_metadata_NN` (an Attachable as JSON: AttachableRef,
FileName, ContentType…) and `file_content_NN` (the bytes, possibly base64 with
`Content-Transfer-Encoding: base64`, as python-quickbooks sends them). Each pair becomes one
entry of `AttachableResponse`, an Attachable or a Fault of its own: pairs succeed or fail
independently, like batch items. python-quickbooks writes its multipart with bare LF line
ends, so the parser takes LF as well as CRLF (Django's parser wants CRLF).
"""

import base64
import binascii
import json
import re
import secrets

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from . import faults, store
from .faults import QboFault
from .models import AttachmentFile, Entity

# What QuickBooks Online takes as an attachment (Intuit's attachments guide; Codat's table of
# QuickBooks Online's accepted extensions: ai, csv, doc, docx, eps, gif, jpeg, jpg, ods,
# pages, pdf, png, rtf, tif, txt, xls, xlsx, xml).
ALLOWED_CONTENT_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/tiff",
        "text/plain",
        "text/csv",
        "text/xml",
        "application/xml",
        "application/rtf",
        "text/rtf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/postscript",
        "application/vnd.apple.pages",
    }
)
# Intuit's limit; an environment setting (QBO_SANDBOX_ATTACHMENT_MAX_BYTES) so tests can lower it.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
_PART_NAME = re.compile(r"^file_(metadata|content)_(\w+)$")


def _header_params(value):
    """'form-data; name="a"; filename="b.pdf"' → ('form-data', {'name': 'a', 'filename': …})."""
    head, *rest = value.split(";")
    params = {}
    for item in rest:
        key, _, val = item.strip().partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return head.strip().lower(), params


def _split_part(raw):
    """(headers, body) of one part; the blank line after the headers may be CRLF or LF."""
    raw = raw[2:] if raw.startswith(b"\r\n") else raw[1:] if raw.startswith(b"\n") else raw
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return None
    headers = {}
    for line in raw[: match.start()].decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = raw[match.end() :]
    # One line break belongs to the boundary that follows.
    body = body[:-2] if body.endswith(b"\r\n") else body[:-1] if body.endswith(b"\n") else body
    return headers, body


def parse(request):
    """The request's parts by name: {name: (headers, bytes)}; a body that is not multipart
    is refused as a whole (a top-level Fault)."""
    kind, params = _header_params(request.META.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        raise faults.business_validation("Content-Type must be multipart/form-data with a boundary")
    limit = max_bytes()
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit * 4 // 3 + 1024 * 1024:  # base64 makes the body a third bigger
        raise _too_large(length)
    data = request.read()  # not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE is for forms
    parts = {}
    for chunk in data.split(b"--" + boundary.encode("latin-1"))[1:]:
        if chunk.startswith(b"--"):
            break  # the closing boundary
        split = _split_part(chunk)
        if split is None:
            continue
        headers, body = split
        _, disposition = _header_params(headers.get("content-disposition", ""))
        if disposition.get("name"):
            parts[disposition["name"]] = (headers, disposition, body)
    return parts


def pairs(parts):
    """[(suffix, metadata part or None, content part or None)] in suffix order."""
    found = {}
    for name, part in parts.items():
        match = _PART_NAME.match(name)
        if match:
            found.setdefault(match.group(2), {})[match.group(1)] = part
    if not found:
        raise faults.required_missing("file_content_01")
    return [(k, v.get("metadata"), v.get("content")) for k, v in sorted(found.items())]


def max_bytes():
    return getattr(settings, "QBO_SANDBOX_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES)


def _too_large(size):
    return QboFault(
        6000,
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: The file is {size} bytes; attachments can be at most "
        f"{max_bytes()} bytes.",
        "file_content",
    )


def _content_bytes(headers, body):
    if headers.get("content-transfer-encoding", "").lower() == "base64":
        try:
            return base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise QboFault(
                2010, "Request has invalid or unsupported property", "file_content is not base64"
            )
    return body


def _metadata(part):
    if part is None:
        return {}
    try:
        meta = json.loads(part[2] or b"{}")
    except ValueError:
        raise QboFault(
            2010, "Request has invalid or unsupported property", "file_metadata is not valid JSON"
        )
    if set(meta) == {"Attachable"} and isinstance(meta["Attachable"], dict):
        meta = meta["Attachable"]
    if not isinstance(meta, dict):
        raise QboFault(2010, "Request has invalid or unsupported property", "file_metadata")
    return meta


def upload_one(ctx, request, metadata_part, content_part):
    """One pair → the Attachable created (rendered), its bytes kept; raises QboFault."""
    if content_part is None:
        raise faults.required_missing("file_content")
    headers, disposition, body = content_part
    content = _content_bytes(headers, body)
    if not content:
        raise QboFault(
            2020,
            "Required param missing, need to supply the required value for the API",
            "Required parameter file_content is missing or empty in the request",
            "file_content",
        )
    if len(content) > max_bytes():
        raise _too_large(len(content))
    meta = _metadata(metadata_part)
    declared = str(meta.get("ContentType") or headers.get("content-type") or "")
    content_type = declared.split(";")[0].strip().lower()
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise QboFault(
            6000,
            "A business validation error has occurred while processing your request",
            f"Business Validation Error: Unsupported file type {declared or '(none)'}: "
            "QuickBooks takes PDF, images, text, CSV, XML and office documents.",
            "ContentType",
        )
    file_name = str(meta.get("FileName") or disposition.get("filename") or "").strip()
    if not file_name:
        raise faults.required_missing("FileName")
    meta = {k: v for k, v in meta.items() if k not in store.READ_ONLY and k != "Id"}
    meta.update({"FileName": file_name[:1000], "ContentType": content_type, "Size": len(content)})
    entity = store.entity_create(ctx, "Attachable", meta)
    token = secrets.token_urlsafe(24)
    realm = ctx.company.realm_id
    entity.data["FileAccessUri"] = f"/v3/company/{realm}/download/{entity.qbo_id}"
    entity.data["TempDownloadUri"] = request.build_absolute_uri(
        reverse("qbo_sandbox:attachment_download", args=[token])
    )
    entity.save(update_fields=["data"])
    AttachmentFile.objects.create(entity=entity, content=content, token=token)
    return store.render(entity)


def upload(ctx, request, parts):
    """Every pair in its own savepoint: a refused one leaves no trace and announces nothing."""
    answers = []
    for _suffix, metadata_part, content_part in pairs(parts):
        events_before = len(ctx.events)
        try:
            with transaction.atomic():
                answers.append(
                    {"Attachable": upload_one(ctx, request, metadata_part, content_part)}
                )
        except QboFault as fault:
            del ctx.events[events_before:]
            ctx.live_refs.clear()
            errors = [dict(e, element=e.get("element", "")) for e in fault.errors]
            answers.append({"Fault": {"Error": errors, "type": fault.type}})
    return {"AttachableResponse": answers}


def all_accepted(body):
    return all("Fault" not in item for item in body.get("AttachableResponse", []))


def temp_download_uri(company, raw_id):
    """GET /download/<id>: Intuit answers the file's temporary URL as plain text."""
    entity = store.get_entity(company, "Attachable", raw_id)
    file = AttachmentFile.objects.filter(entity=entity).first()
    if file is None:
        raise faults.object_not_found("The attachable has no file (a note)")
    return entity.data.get("TempDownloadUri", "")


def download(request, token):
    """The bytes behind a TempDownloadUri (no bearer: the link is the permission, as on S3)."""
    file = get_object_or_404(AttachmentFile.objects.select_related("entity"), token=token)
    if file.entity.deleted:
        return HttpResponse(status=404)
    data = file.entity.data
    response = HttpResponse(bytes(file.content), content_type=data.get("ContentType", ""))
    name = str(data.get("FileName", "file")).replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def attachments_of(company, entity_type, qbo_id):
    """The live Attachables naming one object (the sandbox UI's invoice page)."""
    rows = Entity.objects.filter(company=company, entity_type="Attachable", deleted=False).order_by(
        "qbo_id"
    )
    wanted = (entity_type.lower(), str(qbo_id))
    return [
        store.render(e)
        for e in rows
        if any(
            (str((r.get("EntityRef") or {}).get("type", "")).lower(),
             str((r.get("EntityRef") or {}).get("value", ""))) == wanted
            for r in e.data.get("AttachableRef") or [] if isinstance(r, dict)
        )
    ]  # fmt: skip
