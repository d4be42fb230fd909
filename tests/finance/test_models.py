"""Model-level invariants: container numbers (ISO 6346) and QuickBooks document numbers."""

import pytest
from django.core.exceptions import ValidationError

from finance.models import Invoice, Load
from finance.validators import (
    iso6346_check_digit,
    validate_container_number,
    validate_doc_number,
    validate_qb_id,
)


def test_check_digit_of_the_iso_6346_reference_example():
    # CSQU 305438 3 is the worked example of the standard.
    assert iso6346_check_digit("CSQU305438") == 3


@pytest.mark.parametrize("number", ["CSQU3054383", "MSCU1234566", "MAEU1234567", ""])
def test_valid_container_numbers_pass(number):
    validate_container_number(number)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("CSQU3054384", "wrong check digit"),
        ("CSQX3054383", "not a container number"),  # 4th letter must be U/J/Z/R
        ("csqu3054383", "not a container number"),
        ("CSQU305438", "not a container number"),
    ],
)
def test_invalid_container_numbers_are_refused(number, message):
    with pytest.raises(ValidationError, match=message):
        validate_container_number(number)


@pytest.mark.django_db
def test_a_load_refuses_a_bad_container_on_full_clean(company):
    load = Load(company=company, load_number="LD-1", container_number="MSCU1234565")

    with pytest.raises(ValidationError) as exc:
        load.full_clean()

    assert "container_number" in exc.value.message_dict


def test_doc_numbers_up_to_21_chars_pass():
    validate_doc_number("INV-2026-000000000001")  # exactly 21


def test_doc_numbers_over_21_chars_are_refused():
    with pytest.raises(ValidationError, match="21 characters"):
        validate_doc_number("INV-2026-0000000000001")


def test_doc_numbers_with_control_characters_are_refused():
    with pytest.raises(ValidationError, match="control characters"):
        validate_doc_number("INV\t1")


@pytest.mark.django_db
def test_invoice_full_clean_applies_the_doc_number_limit(company):
    from tests.finance.factories import CustomerFactory

    invoice = Invoice(
        company=company, customer=CustomerFactory(), doc_number="X" * 22, invoice_date="2026-10-01"
    )

    with pytest.raises(ValidationError) as exc:
        invoice.full_clean()

    assert "doc_number" in exc.value.message_dict


@pytest.mark.parametrize("value", ["abc", "-5", "0", "1.5", " 7", ""])
def test_bad_quickbooks_ids_are_refused(value):
    with pytest.raises(ValidationError, match="positive whole number"):
        validate_qb_id(value)
