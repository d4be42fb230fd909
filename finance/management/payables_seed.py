"""The payables half of `seed_demo`: carriers and owner-operator drivers, pay codes, carrier
bills and weekly driver settlements (over many loads, some over two trucks, with fuel-advance and
escrow deductions). Deterministic (its own `random.Random`), through the finance services."""

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from finance import payables
from finance.models import Bill, Company, Load, PayCode, Vendor

CENT = Decimal("0.01")
# code, name, kind, account type
PAY_CODES = [
    ("LH", "Line haul pay", "earning", "Cost of Goods Sold"),
    ("FSCP", "Fuel surcharge pay", "earning", "Cost of Goods Sold"),
    ("DETP", "Detention pay", "earning", "Cost of Goods Sold"),
    ("CHASP", "Chassis rental", "earning", "Expense"),
    ("PDIEM", "Per diem reimbursement", "earning", "Expense"),
    ("TOLLS", "Tolls reimbursement", "earning", "Expense"),
    ("LUMP", "Lumper fee", "earning", "Expense"),
    ("FADV", "Fuel advance", "deduction", "Other Current Asset"),
    ("ESCR", "Escrow deduction", "deduction", "Other Current Liability"),
]
CARRIERS = [
    ("Lone Star Carriers", "dispatch@lonestarcarriers.example", "Houston", "TX"),
    ("Pacific Gateway Trucking", "ap@pacificgateway.example", "Carson", "CA"),
    ("Garden State Haulers", "billing@gshaulers.example", "Elizabeth", "NJ"),
    ("Inland Empire Dray", "ap@iedray.example", "Fontana", "CA"),
    ("Port City Transport", "ar@portcity.example", "Savannah", "GA"),
    ("Bayside Intermodal", "billing@baysideim.example", "Oakland", "CA"),
    ("Keystone Container Lines", "ap@keystonecl.example", "Newark", "NJ"),
    ("Gulf Stream Logistics", "invoices@gulfstream.example", "Mobile", "AL"),
    ("Red Rock Freight", "ar@redrockfreight.example", "Phoenix", "AZ"),
    ("Tidewater Trucking", "billing@tidewater.example", "Norfolk", "VA"),
    ("Blue Line Chassis Co", "ar@bluelinechassis.example", "Long Beach", "CA"),
    ("Summit Drayage", "ap@summitdray.example", "Charleston", "SC"),
]
DRIVERS = [
    ("Miguel Alvarez", "m.alvarez@drivers.example"),
    ("Tanya Brooks", "t.brooks@drivers.example"),
    ("Darnell Carter", "d.carter@drivers.example"),
    ("Hoang Nguyen", "h.nguyen@drivers.example"),
    ("Sandeep Kaur", "s.kaur@drivers.example"),
    ("Roberto Diaz", "r.diaz@drivers.example"),
    ("Keisha Williams", "k.williams@drivers.example"),
    ("Piotr Nowak", "p.nowak@drivers.example"),
]
# The vendor whose name `connect_sandbox --demo-conflicts` gives a QuickBooks customer.
CLASHING_VENDOR = CARRIERS[0][0]


def _money(value: Decimal | int | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class PayablesSeeder:
    def __init__(self, *, seed: int, company: Company, base_date: date) -> None:
        self.rng = random.Random(seed * 7919 + 17)
        self.company = company
        self.base_date = base_date

    def pay_codes(self) -> dict[str, PayCode]:
        codes = {}
        for code, name, kind, account_type in PAY_CODES:
            existing = PayCode.objects.filter(company=self.company, code=code).first()
            codes[code] = existing or payables.pay_code_create(
                company=self.company, code=code, name=name, kind=kind, account_type=account_type
            )
        return codes

    def vendors(self) -> tuple[list[Vendor], list[Vendor]]:
        carriers = [
            payables.vendor_create(
                company=self.company,
                display_name=name,
                kind=Vendor.Kind.CARRIER,
                company_name=name,
                email=email,
                city=city,
                state=state,
                address_line1=f"{self.rng.randint(100, 9999)} Industrial Way",
                postal_code=f"{self.rng.randint(10000, 99999)}",
                terms_days=self.rng.choice([15, 30]),
            )
            for name, email, city, state in CARRIERS
        ]
        drivers = [
            payables.vendor_create(
                company=self.company,
                display_name=name,
                kind=Vendor.Kind.DRIVER,
                email=email,
                is_1099=True,
                terms_days=7,
            )
            for name, email in DRIVERS
        ]
        return carriers, drivers

    def _loads(self, count: int) -> list[Load]:
        """Loads the receivables seed made (the same moves are billed and paid for)."""
        loads = list(Load.objects.filter(company=self.company).order_by("pk")[:400])
        return self.rng.sample(loads, min(count, len(loads))) if loads else []

    def carrier_bill(self, n: int, vendor: Vendor, codes: dict[str, PayCode]) -> Bill:
        rng = self.rng
        lines = []
        for load in self._loads(rng.randint(1, 3)):
            rate = _money(rng.choice([300, 325, 350, 375, 400, 450]))
            lines.append(payables.BillLineSpec(pay_code=codes["LH"], rate=rate, load=load))
            fsc = _money(rate * Decimal(rng.choice(["0.20", "0.24", "0.27"])))
            lines.append(payables.BillLineSpec(pay_code=codes["FSCP"], rate=fsc, load=load))
            if rng.random() < 0.3:
                hours = rng.randint(1, 3)
                lines.append(
                    payables.BillLineSpec(
                        pay_code=codes["DETP"],
                        rate=Decimal("65.00"),
                        quantity=Decimal(hours),
                        load=load,
                        note=f"Detention {hours} hr",
                    )
                )
        if not lines:  # no loads seeded: a plain line-haul bill
            lines.append(payables.BillLineSpec(pay_code=codes["LH"], rate=Decimal("350.00")))
        bill_date = self.base_date - timedelta(days=rng.randint(0, 45))
        return payables.bill_create(
            company=self.company,
            vendor=vendor,
            doc_number=f"CB-{n:05d}",
            bill_date=bill_date,
            lines=lines,
            kind=Bill.Kind.CARRIER_BILL,
            status=Bill.Status.DRAFT if rng.random() < 0.06 else Bill.Status.APPROVED,
            memo=f"Outside carrier moves {bill_date:%B %Y}",
        )

    def settlement(self, n: int, driver: Vendor, codes: dict[str, PayCode], week: int) -> Bill:
        """A week of one driver's moves, on one truck or (one in three) two."""
        rng = self.rng
        period_end = self.base_date - timedelta(days=7 * week)
        period_start = period_end - timedelta(days=6)
        trucks = [f"TRK-{rng.randint(100, 199)}"]
        if rng.random() < 0.35:
            trucks.append(f"TRK-{rng.randint(200, 299)}")  # the first truck went in for repair
        lines = []
        loads = self._loads(rng.randint(3, 8))
        for index, load in enumerate(loads):
            truck = trucks[index * len(trucks) // len(loads)]
            rate = _money(rng.choice([180, 210, 240, 265, 290]))
            lines.append(
                payables.BillLineSpec(
                    pay_code=codes["LH"], rate=rate, load=load, truck_number=truck
                )
            )
            if rng.random() < 0.4:
                lines.append(
                    payables.BillLineSpec(
                        pay_code=codes["TOLLS"],
                        rate=_money(rng.choice([12.5, 18, 27.75])),
                        load=load,
                        truck_number=truck,
                    )
                )
        gross = sum((spec.rate * spec.quantity for spec in lines), Decimal("0"))
        lines.append(
            payables.BillLineSpec(
                pay_code=codes["FADV"],
                rate=_money(min(gross * Decimal("0.3"), Decimal(rng.choice([150, 200, 250])))),
                truck_number=trucks[0],
                note="Fuel card advance",
            )
        )
        lines.append(
            payables.BillLineSpec(pay_code=codes["ESCR"], rate=Decimal("50.00"), note="Escrow")
        )
        return payables.bill_create(
            company=self.company,
            vendor=driver,
            doc_number=f"SET-{period_end:%y%m%d}-{n:03d}",
            bill_date=period_end + timedelta(days=2),
            lines=lines,
            kind=Bill.Kind.SETTLEMENT,
            status=Bill.Status.APPROVED,
            terms_days=7,
            period_start=period_start,
            period_end=period_end,
            memo=f"Trucks {', '.join(trucks)}",
        )

    def run(self) -> dict[str, int]:
        codes = self.pay_codes()
        carriers, drivers = self.vendors()
        bills = [self.carrier_bill(n, self.rng.choice(carriers), codes) for n in range(1, 31)]
        bills += [
            self.settlement(n, drivers[n % len(drivers)], codes, week=n // len(drivers))
            for n in range(1, 21)
        ]
        return {
            "vendors": len(carriers) + len(drivers),
            "pay_codes": len(codes),
            "bills": len(bills),
            "settlements": sum(1 for b in bills if b.kind == Bill.Kind.SETTLEMENT),
        }
