"""Domain rows for finance tests, built through finance services where practical."""

from datetime import date
from decimal import Decimal

import factory

from finance import services
from finance.models import ChargeCode, Customer, Invoice, Load
from finance.validators import iso6346_check_digit


def container_number(owner: str, serial: int) -> str:
    prefix = f"{owner}{serial:06d}"
    return prefix + str(iso6346_check_digit(prefix))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    company = factory.LazyFunction(services.company_get_default)
    display_name = factory.Sequence(lambda n: f"Coastal Shipper {n} Inc")
    billing_email = factory.Sequence(lambda n: f"ap{n}@coastal.example")
    city = "Long Beach"
    state = "CA"

    @classmethod
    def _create(cls, model_class, *, company, display_name, **fields):
        return services.customer_create(company=company, display_name=display_name, **fields)


class ChargeCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChargeCode

    company = factory.LazyFunction(services.company_get_default)
    code = factory.Sequence(lambda n: f"C{n}")
    name = factory.Sequence(lambda n: f"Charge {n}")
    default_rate = Decimal("100.00")

    @classmethod
    def _create(cls, model_class, *, company, code, name, **fields):
        return services.charge_code_create(company=company, code=code, name=name, **fields)


class LoadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Load

    company = factory.LazyFunction(services.company_get_default)
    load_number = factory.Sequence(lambda n: f"LD-{1000 + n}")
    container_number = factory.Sequence(lambda n: container_number("MSCU", 123000 + n))
    po_number = factory.Sequence(lambda n: f"45000{n:02d}")
    bol_number = factory.Sequence(lambda n: f"MEDU{8800000 + n}")
    reference_number = ""
    pickup_location = "APM Terminals Pier 400, Los Angeles"
    delivery_location = "Prologis DC, Ontario CA"
    pickup_date = date(2026, 10, 14)
    delivery_date = date(2026, 10, 15)

    @classmethod
    def _create(cls, model_class, *, company, load_number, **fields):
        return services.load_create(company=company, load_number=load_number, **fields)


class InvoiceFactory(factory.django.DjangoModelFactory):
    """`InvoiceFactory(loads=2, lines=3)` builds a combined invoice with 3 lines per load."""

    class Meta:
        model = Invoice

    company = factory.LazyFunction(services.company_get_default)
    customer = factory.SubFactory(CustomerFactory)
    doc_number = factory.Sequence(lambda n: f"INV-{20001 + n}")
    invoice_date = date(2026, 10, 20)
    status = Invoice.Status.APPROVED

    @classmethod
    def _create(cls, model_class, *, loads=1, lines=2, charge_sets=None, **kwargs):
        if charge_sets is None:
            code = ChargeCodeFactory()
            charge_sets = [
                services.ChargeSetSpec(
                    load=LoadFactory(),
                    lines=[
                        services.LineSpec(charge_code=code, rate=Decimal("100.00"))
                        for _ in range(lines)
                    ],
                )
                for _ in range(loads)
            ]
        return services.invoice_create(charge_sets=charge_sets, **kwargs)
