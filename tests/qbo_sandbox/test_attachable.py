"""Intuit's attachment upload (multipart /upload) and Attachable reads, over HTTP with
python-quickbooks 0.9.12 as it is."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, Ref

from qbo_sandbox import usage
from qbo_sandbox.models import AttachmentFile, Entity, UsageCounter
from qbo_sandbox.store import Ctx, entity_create

pytestmark = pytest.mark.django_db(transaction=True)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def invoice(company):
    ctx = Ctx(company)
    customer = entity_create(ctx, "Customer", {"DisplayName": "Attach Customer"})
    return entity_create(
        ctx, "Invoice", {"CustomerRef": {"value": str(customer.qbo_id)}, "Line": [{"Amount": 90}]}
    )


def metadata(invoice_id, *, name="pod.pdf", content_type="application/pdf", on_send=False):
    return {
        "AttachableRef": [
            {"EntityRef": {"type": "Invoice", "value": str(invoice_id)}, "IncludeOnSend": on_send}
        ],
        "FileName": name,
        "ContentType": content_type,
    }


def pq_upload(qb, invoice_id, content=PDF, request_id=None, **meta):
    """What the TMS sends: python-quickbooks' own multipart (base64, LF line ends)."""
    return qb.create_object(
        "Attachable",
        json.dumps(metadata(invoice_id, **meta)),
        _file_bytes=content,
        request_id=request_id,
    )


def attachables_of(api, invoice_id):
    sql = (
        "select * from Attachable where AttachableRef.EntityRef.Type = 'Invoice' "
        f"and AttachableRef.EntityRef.value = '{invoice_id}'"
    )
    return api.query(sql).json()["QueryResponse"].get("Attachable", [])


def test_upload_read_query_and_download(qb, api, invoice, company):
    answer = pq_upload(qb, invoice.qbo_id, on_send=True)
    [item] = answer["AttachableResponse"]
    attachable = item["Attachable"]
    assert attachable["FileName"] == "pod.pdf" and attachable["ContentType"] == "application/pdf"
    assert attachable["Size"] == len(PDF) and attachable["SyncToken"] == "0"
    assert attachable["AttachableRef"] == [
        {"EntityRef": {"type": "Invoice", "value": str(invoice.qbo_id)}, "IncludeOnSend": True}
    ]
    assert attachable["FileAccessUri"] == (
        f"/v3/company/{company.realm_id}/download/{attachable['Id']}"
    )
    assert "CreateTime" in attachable["MetaData"] and "time" in answer
    # Read, query by the invoice it is attached to, download.
    read = api.get(f"attachable/{attachable['Id']}").json()["Attachable"]
    assert read["TempDownloadUri"] == attachable["TempDownloadUri"]
    assert [a["Id"] for a in attachables_of(api, invoice.qbo_id)] == [attachable["Id"]]
    assert attachables_of(api, "999") == []
    assert requests.get(read["TempDownloadUri"], timeout=10).content == PDF
    temp = api.get(f"download/{attachable['Id']}")
    assert temp.status_code == 200 and temp.text == read["TempDownloadUri"]
    # python-quickbooks' object reads it too.
    assert Attachable.get(attachable["Id"], qb=qb).FileName == "pod.pdf"


def test_python_quickbooks_save_with_file_bytes(qb, api, invoice):
    attachable = Attachable()
    ref = AttachableRef()
    ref.EntityRef = Ref()
    ref.EntityRef.type, ref.EntityRef.value = "Invoice", str(invoice.qbo_id)
    attachable.AttachableRef.append(ref)
    attachable.FileName = "bol.pdf"
    attachable.ContentType = "application/pdf"
    attachable._FileBytes = PDF
    saved = attachable.save(qb=qb)
    assert saved.Id and saved.FileName == "bol.pdf"
    assert AttachmentFile.objects.get(entity__qbo_id=int(saved.Id)).content.tobytes() == PDF


def crlf_upload(client, company, tokens, meta, filename, content, content_type):
    """A standard client's multipart (CRLF, raw bytes, a filename), through Django's test
    client in this process."""
    boundary = "XyZ-boundary"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file_metadata_01"\r\n'
            "Content-Type: application/json\r\n\r\n".encode(),
            json.dumps(meta).encode(),
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file_content_01"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode(),
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return client.post(
        f"/qbo-sandbox/v3/company/{company.realm_id}/upload?minorversion=75",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
    )


def test_standard_multipart_with_raw_bytes_and_crlf(client, company, tokens, invoice):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20 + b"\r\n"  # ends in CRLF: kept
    meta = metadata(invoice.qbo_id, name="scale.png", content_type="image/png")
    answer = crlf_upload(client, company, tokens, meta, "scale.png", png, "image/png")
    assert answer.status_code == 200, answer.content
    attachable = answer.json()["AttachableResponse"][0]["Attachable"]
    assert attachable["Size"] == len(png)
    download = client.get(attachable["TempDownloadUri"].split("testserver", 1)[-1])
    assert download.content == png and download["Content-Type"] == "image/png"


def test_requestid_replays_one_attachable(qb, api, invoice):
    first = pq_upload(qb, invoice.qbo_id, request_id="att-1")
    again = pq_upload(qb, invoice.qbo_id, request_id="att-1")
    assert again["AttachableResponse"] == first["AttachableResponse"]
    assert len(attachables_of(api, invoice.qbo_id)) == 1


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        ({"content_type": "application/x-msdownload", "name": "x.exe"}, "6000", "Unsupported"),
        ({"invoice_id": "4242"}, "2500", "Invalid Reference Id"),
    ],
)
def test_refused_files_fault_inside_the_response(qb, api, invoice, kwargs, code, words):
    invoice_id = kwargs.pop("invoice_id", invoice.qbo_id)
    answer = pq_upload(qb, invoice_id, request_id="att-bad", **kwargs)
    [item] = answer["AttachableResponse"]
    [error] = item["Fault"]["Error"]
    assert error["code"] == code and words in error["Message"] + error["Detail"]
    assert not Entity.objects.filter(entity_type="Attachable").exists()
    # Not kept for replay: the fixed retry with the same requestid is written.
    fixed = pq_upload(qb, invoice.qbo_id, request_id="att-bad")
    assert "Attachable" in fixed["AttachableResponse"][0]
    assert len(attachables_of(api, invoice.qbo_id)) == 1


def test_empty_file_is_refused(client, company, tokens, invoice):
    # python-quickbooks sends no multipart for empty bytes (it posts a note): a raw client does.
    meta = metadata(invoice.qbo_id)
    answer = crlf_upload(client, company, tokens, meta, "pod.pdf", b"", "application/pdf")
    [error] = answer.json()["AttachableResponse"][0]["Fault"]["Error"]
    assert error["code"] == "2020" and "file_content" in error["Detail"]


def test_too_large(settings, qb, invoice):
    settings.QBO_SANDBOX_ATTACHMENT_MAX_BYTES = 64
    answer = pq_upload(qb, invoice.qbo_id, content=PDF * 3)
    [error] = answer["AttachableResponse"][0]["Fault"]["Error"]
    assert error["code"] == "6000" and "at most 64 bytes" in error["Detail"]


def test_not_multipart_is_a_fault(api):
    answer = api.post("upload", json={"FileName": "x"})
    assert answer.status_code == 400 and "Fault" in answer.json()


def test_metered_and_in_cdc_and_on_the_invoice_page(
    qb, api, invoice, company, app, client, signed_in
):
    def counts():
        row = UsageCounter.objects.get(app=app, company=company, month=usage.month_start())
        return row.core, row.coreplus

    before = counts() if UsageCounter.objects.filter(app=app).exists() else (0, 0)
    attachable = pq_upload(qb, invoice.qbo_id)["AttachableResponse"][0]["Attachable"]
    api.get(f"attachable/{attachable['Id']}")
    attachables_of(api, invoice.qbo_id)
    core, coreplus = counts()
    assert (core - before[0], coreplus - before[1]) == (1, 2)  # upload Core; read, query CorePlus
    cdc = api.get("cdc", params={"entities": "Attachable", "changedSince": "2020-01-01"})
    assert cdc.status_code == 400  # older than 30 days is refused
    # An instant with its offset: a bare date is midnight Pacific, hours ahead of UTC's date.
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    cdc = api.get("cdc", params={"entities": "Attachable", "changedSince": since}).json()
    [block] = cdc["CDCResponse"][0]["QueryResponse"]
    assert [a["Id"] for a in block["Attachable"]] == [attachable["Id"]]
    page = client.get(
        f"/qbo-sandbox/company/{company.realm_id}/Invoice/{invoice.qbo_id}/"
    ).content.decode()
    assert 'id="attachments"' in page and "pod.pdf" in page
    assert f'data-attachable="{attachable["Id"]}"' in page
