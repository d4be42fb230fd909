"""Small builders for engine tests (finance factories build the rows)."""

from decimal import Decimal

from finance import services
from tests.finance.factories import CustomerFactory, InvoiceFactory, LoadFactory


def invoice_with(code, *, loads: int = 1, lines: int = 2, customer=None, **kwargs):
    """An invoice whose lines all use `code`; several loads make it a combined invoice."""
    charge_sets = [
        services.ChargeSetSpec(
            load=LoadFactory(),
            lines=[
                services.LineSpec(
                    charge_code=code, rate=Decimal("125.50"), note=f"line {n + 1} of load {i + 1}"
                )
                for n in range(lines)
            ],
        )
        for i in range(loads)
    ]
    return InvoiceFactory(charge_sets=charge_sets, customer=customer or CustomerFactory(), **kwargs)
