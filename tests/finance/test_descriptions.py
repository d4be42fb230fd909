"""The description builder: what QuickBooks invoice lines will read."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from finance.descriptions import (
    MAX_LENGTH,
    TRUNCATION_MARKER,
    describe_invoice,
    preview_descriptions,
    validate_mapping,
)
from finance.models import ChargeLine
from finance.services import ChargeSetSpec, LineSpec
from tests.finance.factories import ChargeCodeFactory, InvoiceFactory, LoadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(company):
    return {
        "DRAY": ChargeCodeFactory(code="DRAY", name="Drayage"),
        "FSC": ChargeCodeFactory(code="FSC", name="Fuel surcharge"),
        "CHAS": ChargeCodeFactory(code="CHAS", name="Chassis"),
    }


def _load(n, **fields):
    defaults = {"load_number": f"LD-104{n}", "container_number": "MSCU1234566", "po_number": ""}
    return LoadFactory(**{**defaults, **fields})


def _set(load, *lines):
    return ChargeSetSpec(
        load=load,
        lines=[LineSpec(charge_code=c, rate=Decimal("50"), note=note) for c, note in lines],
    )


def _configure(settings_row, *, fields=(), separator=" · ", prefix="", template=""):
    settings_row.description_fields = list(fields)
    settings_row.description_separator = separator
    settings_row.description_prefix = prefix
    settings_row.description_template = template
    return settings_row


def test_it_joins_labelled_fields_for_a_single_load(company, codes, fin_settings):
    load = _load(1, po_number="4500012")
    invoice = InvoiceFactory(
        charge_sets=[_set(load, (codes["DRAY"], ""), (codes["CHAS"], "Chassis 2 days"))]
    )
    _configure(fin_settings, fields=["container", "po", "charge_note"])

    texts = [d.text for d in describe_invoice(invoice=invoice, settings=fin_settings)]

    # Empty note is skipped entirely; no prefix on a single-load invoice.
    assert texts == [
        "Container MSCU1234566 · PO 4500012",
        "Container MSCU1234566 · PO 4500012 · Chassis 2 days",
    ]


def test_it_prefixes_each_load_of_a_combined_invoice(company, codes, fin_settings):
    loads = [
        _load(n, container_number=c)
        for n, c in enumerate(["MSCU1234566", "MAEU1234567", "CMAU1234564"], start=1)
    ]
    for load in loads:
        load.full_clean()  # why: the fixture containers must be valid ISO 6346
    invoice = InvoiceFactory(
        charge_sets=[_set(load, (codes["DRAY"], ""), (codes["FSC"], "")) for load in loads]
    )
    _configure(fin_settings, fields=["container", "charge_name"])

    result = describe_invoice(invoice=invoice, settings=fin_settings)

    assert len(result) == 6
    assert result[0].text == "Load 1 (LD-1041): Container MSCU1234566 · Drayage"
    assert result[5].text == "Load 3 (LD-1043): Container CMAU1234564 · Fuel surcharge"


def test_it_keeps_charge_set_and_line_order(company, codes, fin_settings):
    invoice = InvoiceFactory(
        charge_sets=[
            _set(_load(1), (codes["DRAY"], "a"), (codes["FSC"], "b")),
            _set(_load(2), (codes["CHAS"], "c")),
        ]
    )
    _configure(fin_settings, fields=["charge_note"], prefix="#{n} ")

    result = describe_invoice(invoice=invoice, settings=fin_settings)

    assert [d.text for d in result] == ["#1 a", "#1 b", "#2 c"]
    assert [d.charge_line.charge_code.code for d in result] == ["DRAY", "FSC", "CHAS"]


def test_an_explicit_prefix_applies_to_a_single_load(company, codes, fin_settings):
    invoice = InvoiceFactory(charge_sets=[_set(_load(1), (codes["DRAY"], ""))])
    _configure(fin_settings, fields=["charge_name"], prefix="Load {n} ({load}): ")

    [line] = describe_invoice(invoice=invoice, settings=fin_settings)

    assert line.text == "Load 1 (LD-1041): Drayage"


def test_empty_optional_fields_leave_no_trace(company, codes, fin_settings):
    load = _load(1, container_number="", po_number="", bol_number="", reference_number="")
    invoice = InvoiceFactory(charge_sets=[_set(load, (codes["DRAY"], ""))])
    _configure(fin_settings, fields=["container", "po", "bol", "reference", "charge_note"])

    [line] = describe_invoice(invoice=invoice, settings=fin_settings)

    # Nothing configured has a value: the line falls back to the charge name, never blank.
    assert line.text == "Drayage"


def test_template_drops_segments_whose_values_are_missing(company, codes, fin_settings):
    load = _load(1, po_number="")
    invoice = InvoiceFactory(charge_sets=[_set(load, (codes["CHAS"], "Chassis 2 days"))])
    _configure(fin_settings, template="Container {container} · PO {po} · {charge_note}")

    [line] = describe_invoice(invoice=invoice, settings=fin_settings)

    assert line.text == "Container MSCU1234566 · Chassis 2 days"


def test_template_keeps_literal_segments_and_dates(company, codes, fin_settings):
    load = _load(1, pickup_date=date(2026, 10, 14))
    invoice = InvoiceFactory(charge_sets=[_set(load, (codes["DRAY"], ""))])
    _configure(fin_settings, template="Drayage service · Picked up {pickup_date} · {charge_note}")

    [line] = describe_invoice(invoice=invoice, settings=fin_settings)

    assert line.text == "Drayage service · Picked up 10/14/2026"


def test_unicode_and_control_characters(company, codes, fin_settings):
    load = _load(1, delivery_location="Müller Logística — Nave 3, Querétaro")
    invoice = InvoiceFactory(charge_sets=[_set(load, (codes["DRAY"], "placeholder"))])
    # Services refuse ESC now; a row written before that (or imported) may still hold one.
    ChargeLine.objects.filter(charge_set__invoice=invoice).update(
        note="Espera\t2h\r\nen\x1balmacén ✓"
    )
    _configure(fin_settings, fields=["delivery", "charge_note"])

    [line] = describe_invoice(invoice=invoice, settings=fin_settings)

    # Unicode survives; tabs, newlines and ESC become single spaces.
    assert line.text == "Delivery Müller Logística — Nave 3, Querétaro · Espera 2h en almacén ✓"


def test_text_over_4000_chars_is_cut_with_a_marker(company, codes, fin_settings):
    invoice = InvoiceFactory(charge_sets=[_set(_load(1), (codes["DRAY"], "n" * 500))])
    _configure(fin_settings, template=" ".join(["{charge_note}"] * 9))

    [result] = describe_invoice(invoice=invoice, settings=fin_settings)

    assert result.truncated is True
    assert len(result.text) == MAX_LENGTH
    assert result.text.endswith(TRUNCATION_MARKER)


def test_text_of_exactly_4000_chars_is_not_truncated(company, codes, fin_settings):
    invoice = InvoiceFactory(charge_sets=[_set(_load(1), (codes["DRAY"], "n" * 399))])
    # 10 notes of 399 + 9 spaces + "!" = 4000: at the limit, nothing is cut.
    _configure(fin_settings, template=" ".join(["{charge_note}"] * 10) + "!")

    [result] = describe_invoice(invoice=invoice, settings=fin_settings)

    assert len(result.text) == MAX_LENGTH and result.truncated is False


def test_preview_uses_unsaved_values(company, codes, fin_settings):
    invoice = InvoiceFactory(charge_sets=[_set(_load(1, po_number="PO-9"), (codes["FSC"], ""))])

    [line] = preview_descriptions(
        invoice=invoice, fields=["po", "charge_name"], separator=" | ", prefix="", template=""
    )

    assert line.text == "PO PO-9 | Fuel surcharge"


def test_preview_refuses_an_unknown_field(company, codes):
    invoice = InvoiceFactory(charge_sets=[_set(_load(1), (codes["FSC"], ""))])

    with pytest.raises(ValidationError, match="Unknown description field"):
        preview_descriptions(
            invoice=invoice,
            fields=["container", "vessel"],
            separator=" · ",
            prefix="",
            template="",
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ["vessel"]}, "Unknown description field.*vessel"),
        ({"template": "Container {container} · {vessel}"}, r"template: \{vessel\}"),
        ({"template": "Container {container"}, "unbalanced braces"),
        ({"template": "Container container}"}, "unbalanced braces"),
        ({"template": "{po:>10}"}, "cannot have a format"),
        ({"prefix": "Load {n} {charge_note}: "}, r"prefix: \{charge_note\}"),
        ({"fields": ["po", "po"]}, "only once"),
    ],
)
def test_validate_mapping_refuses_bad_mappings(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        validate_mapping(**{"fields": [], "template": "", "prefix": "", **kwargs})


def test_validate_mapping_accepts_every_known_field():
    validate_mapping(
        fields=["container", "load", "po", "charge_note"],
        template="Container {container} · {{literal}} · {charge_name}",
        prefix="Load {n} ({load}): ",
    )


def test_sets_of_one_load_are_named_by_their_label(company, codes, fin_settings):
    load = _load(1)
    line_haul = _set(load, (codes["DRAY"], ""))
    extras = _set(load, (codes["CHAS"], "Chassis 2 days"))
    extras.label = "Accessorials"
    line_haul.label = ""
    invoice = InvoiceFactory(charge_sets=[line_haul, extras])
    _configure(fin_settings, fields=["charge_name"])

    texts = [d.text for d in describe_invoice(invoice=invoice, settings=fin_settings)]

    # Why: "Load 1 / Load 2" would suggest two containers when there is one.
    assert texts == ["Part 1: Drayage", "Accessorials: Chassis"]
