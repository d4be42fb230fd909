"""Fast data for the benchmarks: bulk_create straight into the tables (no signals, no pushes)."""

import random
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from finance.models import (
    ChargeCode,
    ChargeLine,
    ChargeSet,
    Company,
    CreditMemo,
    Customer,
    Invoice,
    Load,
    Payment,
)
from finance.services import finance_settings_get
from finance.syncstate import SyncStatus

CODES = [
    ("LH", "Line haul"), ("FSC", "Fuel surcharge"), ("CHS", "Chassis"), ("DET", "Detention"),
    ("PP", "Pre-pull"), ("STO", "Storage"), ("WT", "Waiting time"), ("OW", "Overweight"),
    ("HAZ", "Hazmat"), ("TOL", "Tolls"), ("RED", "Redelivery"), ("DRY", "Dry run"),
    ("SCL", "Scale"), ("PRT", "Port congestion"), ("LFT", "Lift fee"),
]  # fmt: skip


def company(name: str) -> Company:
    company, _ = Company.objects.get_or_create(name=name)
    finance_settings_get(company=company)
    return company


def push_set(company: Company, *, customers: int, invoices: int, codes: int = 15, tag: str = ""):
    """customers + charge codes + invoices (3 lines each), all PENDING."""
    rng = random.Random(42)
    custs = Customer.objects.bulk_create(
        Customer(
            company=company,
            display_name=f"{tag}Carrier Customer {i:05d}",
            billing_email=f"ap{i}@customer{i}.example",
            city="Newark",
            state="NJ",
        )
        for i in range(customers)
    )
    items = ChargeCode.objects.bulk_create(
        ChargeCode(
            company=company,
            code=f"{tag}{code}"[:20],
            name=f"{tag}{name}",
            default_rate=Decimal("100.00"),
        )
        for code, name in CODES[:codes]
    )
    today = date(2026, 11, 20)
    loads = Load.objects.bulk_create(
        Load(
            company=company,
            load_number=f"{tag}L{i:06d}",
            container_number=f"MSCU{i:07d}",
            po_number=f"PO{i}",
        )
        for i in range(invoices)
    )
    invs = Invoice.objects.bulk_create(
        Invoice(
            company=company,
            customer=custs[i % customers],
            doc_number=f"{tag}B{i:06d}",
            invoice_date=today,
            due_date=today + timedelta(days=30),
            status=Invoice.Status.APPROVED,
            total=Decimal("0.00"),
        )
        for i in range(invoices)
    )
    sets = ChargeSet.objects.bulk_create(
        ChargeSet(invoice=inv, load=load, position=1) for inv, load in zip(invs, loads, strict=True)
    )
    lines, totals = [], []
    for charge_set in sets:
        total = Decimal("0")
        for position, code in enumerate(rng.sample(items, 3), start=1):
            rate = Decimal(rng.randint(50, 900))
            lines.append(
                ChargeLine(
                    charge_set=charge_set,
                    charge_code=code,
                    quantity=Decimal("1"),
                    rate=rate,
                    amount=rate,
                    position=position,
                )
            )
            total += rate
        totals.append(total)
    ChargeLine.objects.bulk_create(lines, batch_size=5000)
    for inv, total in zip(invs, totals, strict=True):
        inv.total = total
    Invoice.objects.bulk_update(invs, ["total"], batch_size=2000)
    return len(custs), len(items), len(invs)


REASONS = ["validation", "inactive_reference", "duplicate_doc_number", "invalid_reference"]


def problems(company: Company, total: int) -> dict[str, int]:
    """`total` PROBLEM rows across types: 60 % invoices, 15 % payments, 10 % credit memos,
    10 % customers, 5 % charge codes."""
    now = timezone.now()
    rng = random.Random(7)

    def problem_fields(i):
        return dict(
            sync_status=SyncStatus.PROBLEM,
            problem_reason=REASONS[i % len(REASONS)],
            problem_since=now - timedelta(minutes=rng.randint(1, 60 * 24 * 20)),
            last_error_code="6000",
            last_error_message="Business Validation Error",
            attempts=rng.randint(1, 8),
            last_attempt_at=now - timedelta(minutes=rng.randint(1, 600)),
        )

    n_cust, n_item = total // 10, total // 20
    n_inv, n_pay = total * 6 // 10, total * 15 // 100
    n_cm = total - n_cust - n_item - n_inv - n_pay
    custs = Customer.objects.bulk_create(
        (
            Customer(company=company, display_name=f"Problem Customer {i:06d}", **problem_fields(i))
            for i in range(n_cust)
        ),
        batch_size=5000,
    )
    ChargeCode.objects.bulk_create(
        (
            ChargeCode(
                company=company, code=f"P{i:06d}", name=f"Problem code {i}", **problem_fields(i)
            )
            for i in range(n_item)
        ),
        batch_size=5000,
    )
    today = date(2026, 11, 20)
    Invoice.objects.bulk_create(
        (
            Invoice(
                company=company,
                customer=custs[i % n_cust],
                doc_number=f"P{i:07d}",
                invoice_date=today,
                status=Invoice.Status.APPROVED,
                total=Decimal(rng.randint(100, 5000)),
                **problem_fields(i),
            )
            for i in range(n_inv)
        ),
        batch_size=5000,
    )
    Payment.objects.bulk_create(
        (
            Payment(
                company=company,
                customer=custs[i % n_cust],
                amount=Decimal(rng.randint(100, 5000)),
                payment_date=today,
                reference_number=f"CHK{i:07d}",
                **problem_fields(i),
            )
            for i in range(n_pay)
        ),
        batch_size=5000,
    )
    CreditMemo.objects.bulk_create(
        (
            CreditMemo(
                company=company,
                customer=custs[i % n_cust],
                number=f"CM{i:07d}",
                memo_date=today,
                total=Decimal(rng.randint(10, 500)),
                **problem_fields(i),
            )
            for i in range(n_cm)
        ),
        batch_size=5000,
    )
    return {
        "customer": n_cust,
        "item": n_item,
        "invoice": n_inv,
        "payment": n_pay,
        "creditmemo": n_cm,
    }
