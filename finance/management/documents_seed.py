"""Demo load documents: a few tiny PDFs (PODs and BOLs) on seeded loads, written in code."""

from django.core.files.base import ContentFile

from finance.documents import load_document_add
from finance.models import Company, Load, LoadDocument


def tiny_pdf(text: str) -> bytes:
    """A valid one-page PDF saying `text` (no dependency: the objects and xref by hand)."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 16 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
        b"/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length " + str(len(stream)).encode() + b">>stream\n" + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj".encode() + body + b"endobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer<</Size {len(objects) + 1}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def seed_documents(*, company: Company, loads: int = 6) -> int:
    """A POD on each of the first `loads` billed loads, a BOL on every other one; once."""
    if LoadDocument.objects.filter(company=company).exists():
        return 0
    billed = Load.objects.filter(company=company, charge_sets__isnull=False).distinct()
    made = 0
    for n, load in enumerate(billed.order_by("id")[:loads]):
        kinds = ["pod", "bol"] if n % 2 == 0 else ["pod"]
        for kind in kinds:
            text = f"{kind.upper()} for load {load.load_number} ({load.container_number})"
            name = f"{kind}-{load.load_number}.pdf"
            load_document_add(load=load, kind=kind, file=ContentFile(tiny_pdf(text), name=name))
            made += 1
    return made
