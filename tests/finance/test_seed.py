"""seed_demo: realistic, deterministic and idempotent demo data."""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from finance.models import (
    Bill,
    ChargeSet,
    CreditMemo,
    Customer,
    Invoice,
    Load,
    PayCode,
    Payment,
    Vendor,
)
from finance.validators import validate_container_number

pytestmark = pytest.mark.django_db


def _seed(*args) -> dict:
    out = StringIO()
    call_command("seed_demo", "--invoices", "30", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def _fingerprint():
    return [
        (i.doc_number, i.customer.display_name, str(i.total), i.status, i.invoice_date)
        for i in Invoice.objects.select_related("customer").order_by("doc_number")
    ]


def _wipe():
    for model in (Payment, CreditMemo, Invoice, Bill, Vendor, PayCode, Load, Customer):
        model.objects.all().delete()


def test_it_seeds_realistic_counts(company):
    summary = _seed()

    assert summary["status"] == "seeded"
    assert Invoice.objects.count() == 30 and Customer.objects.count() == 20
    assert Payment.objects.exists() and CreditMemo.objects.exists()
    # Payables: carriers and drivers, carrier bills and weekly settlements, some over two trucks.
    assert summary["vendors"] == Vendor.objects.count() == 20
    assert summary["bills"] == Bill.objects.count() == 50
    settlements = Bill.objects.filter(kind=Bill.Kind.SETTLEMENT)
    assert settlements.count() == 20
    trucks = [
        set(s.lines.exclude(truck_number="").values_list("truck_number", flat=True))
        for s in settlements
    ]
    assert any(len(t) == 2 for t in trucks)
    assert all(s.lines.filter(amount__lt=0).exists() for s in settlements)  # deductions
    assert all(b.total > 0 for b in Bill.objects.all())


def test_two_customers_share_a_display_name_and_harbor_has_its_own_email(company):
    _seed()

    # Why: the demo must show a duplicate-name problem and an email-mismatch problem.
    assert Customer.objects.filter(display_name="Pacific Freight Co").count() == 2
    harbor = Customer.objects.get(display_name="Harbor Logistics LLC")
    assert harbor.billing_email == "billing@harbor-logistics.example"


def test_every_container_number_is_valid_iso_6346(company):
    _seed()

    for number in Load.objects.values_list("container_number", flat=True):
        validate_container_number(number)  # raises on a bad check digit


def test_combined_and_multi_charge_set_invoices_are_present(company):
    _seed()

    multi = [i for i in Invoice.objects.all() if i.charge_sets.count() > 1]
    assert multi
    # A combined invoice spans several loads.
    assert any(len({cs.load_id for cs in i.charge_sets.all()}) > 1 for i in multi)


def test_doc_numbers_start_at_inv_10001(company):
    _seed()

    assert Invoice.objects.order_by("doc_number").first().doc_number == "INV-10001"


def test_it_is_deterministic_for_a_seed(company):
    _seed()
    first = _fingerprint()
    first_payments = sorted(Payment.objects.values_list("reference_number", "amount"))
    _wipe()

    _seed()

    assert _fingerprint() == first
    assert sorted(Payment.objects.values_list("reference_number", "amount")) == first_payments


def test_another_seed_gives_other_data(company):
    _seed()
    first = _fingerprint()
    _wipe()

    _seed("--seed", "7")

    assert _fingerprint() != first


def test_a_second_run_creates_nothing(company):
    _seed()
    counts = (Invoice.objects.count(), ChargeSet.objects.count(), Payment.objects.count())

    summary = _seed()

    assert summary["status"] == "already seeded"
    assert (Invoice.objects.count(), ChargeSet.objects.count(), Payment.objects.count()) == counts


def test_with_users_creates_the_demo_logins_once(company):
    _seed("--with-users")
    summary = _seed("--with-users")

    assert summary["users_created"] == []
    assert User.objects.get(username="support").groups.filter(name="Support").exists()
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="finance").check_password("finance")
