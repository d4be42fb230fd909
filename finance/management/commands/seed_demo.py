"""`manage.py seed_demo [--seed N] [--invoices N] [--with-users]`: realistic drayage demo data,
receivables (customers, invoices, payments, credit memos) and payables (carriers, drivers,
bills, settlements: finance/management/payables_seed.py).

Everything goes through finance services, so records start PENDING exactly as real ones do.
Deterministic: one `random.Random(seed)` and a fixed base date, never today. Idempotent: when
the first invoice (INV-10001) exists the data part is skipped ("already seeded").
"""

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from finance import services
from finance.management.documents_seed import seed_documents
from finance.management.payables_seed import PayablesSeeder
from finance.models import (
    Bill,
    ChargeCode,
    Company,
    CreditMemo,
    Customer,
    Invoice,
    Load,
    LoadDocument,
    Membership,
    PayCode,
    Payment,
    Vendor,
)
from finance.validators import iso6346_check_digit

BASE_DATE = date(2026, 11, 1)
FIRST_DOC = 10001
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Region:
    terminals: tuple[str, ...]
    warehouses: tuple[str, ...]


REGIONS = {
    "LA": Region(
        (
            "APM Terminals Pier 400, Los Angeles",
            "Long Beach Container Terminal, Pier E, Long Beach",
            "TraPac, Berth 136, Los Angeles",
            "Fenix Marine Services, Pier 300, Los Angeles",
            "Total Terminals International, Pier T, Long Beach",
        ),
        (
            "Prologis Mira Loma DC, Jurupa Valley CA",
            "Target Import Warehouse, Rialto CA",
            "Dedicated Logistics, 1200 E Artesia Blvd, Carson CA",
            "Ontario Cold Storage, Ontario CA",
        ),
    ),
    "NJ": Region(
        (
            "Port Newark Container Terminal, Newark NJ",
            "Maher Terminals, Elizabeth NJ",
            "APM Terminals Elizabeth, Port Elizabeth NJ",
            "GCT Bayonne, Bayonne NJ",
        ),
        (
            "Exit 8A Logistics Center, Cranbury NJ",
            "Meadowlands Distribution, Secaucus NJ",
            "Carteret Crossdock, Carteret NJ",
        ),
    ),
    "SAV": Region(
        ("Garden City Terminal, Savannah GA", "Ocean Terminal, Savannah GA"),
        (
            "Savannah Gateway Industrial Park, Pooler GA",
            "Effingham Distribution Center, Rincon GA",
        ),
    ),
    "HOU": Region(
        ("Barbours Cut Terminal, Morgan's Point TX", "Bayport Container Terminal, Pasadena TX"),
        (
            "Cedar Port Industrial Park, Baytown TX",
            "Northwest Houston DC, Katy TX",
            "Pinto Business Park, Houston TX",
        ),
    ),
}

# display name, company name, billing email, phone, street, city, state, zip, terms, region
CUSTOMERS = [
    ("Pacific Freight Co", "Pacific Freight Co", "ap@pacificfreight.example", "(562) 555-0141",
     "2401 E Pacific Coast Hwy", "Long Beach", "CA", "90804", 30, "LA"),
    # Same display name again: QuickBooks cannot hold both (a duplicate-name problem).
    ("Pacific Freight Co", "Pacific Freight Company of Texas", "billing@pfc-texas.example",
     "(713) 555-0177", "8800 Clinton Dr", "Houston", "TX", "77029", 30, "HOU"),
    # QuickBooks already knows a "Harbor Logistics LLC" with ap@harborlogistics.example.
    ("Harbor Logistics LLC", "Harbor Logistics LLC", "billing@harbor-logistics.example",
     "(973) 555-0110", "100 Corbin St", "Elizabeth", "NJ", "07201", 45, "NJ"),
    ("Sunrise Home Furnishings", "Sunrise Home Furnishings Inc", "payables@sunrisehome.example",
     "(909) 555-0123", "11500 Etiwanda Ave", "Fontana", "CA", "92337", 30, "LA"),
    ("Golden Gate Imports", "Golden Gate Imports LLC", "ar@goldengateimports.example",
     "(310) 555-0190", "21515 S Western Ave", "Torrance", "CA", "90501", 30, "LA"),
    ("Blue Ridge Apparel", "Blue Ridge Apparel Group", "invoices@blueridgeapparel.example",
     "(912) 555-0155", "500 Jimmy Deloach Pkwy", "Savannah", "GA", "31407", 30, "SAV"),
    ("Coastal Beverage Distributors", "Coastal Beverage Distributors Inc",
     "ap@coastalbev.example", "(912) 555-0132", "1 Crossroads Pkwy", "Pooler", "GA", "31322",
     15, "SAV"),
    ("Lone Star Polymers", "Lone Star Polymers LP", "accounts.payable@lonestarpoly.example",
     "(281) 555-0168", "9300 Bay Area Blvd", "Pasadena", "TX", "77507", 45, "HOU"),
    ("Gulf Coast Steel Supply", "Gulf Coast Steel Supply Co", "ap@gulfcoaststeel.example",
     "(281) 555-0104", "4100 Underwood Rd", "La Porte", "TX", "77571", 30, "HOU"),
    ("Meridian Forwarding", "Meridian Forwarding Inc", "freight.ap@meridianfwd.example",
     "(201) 555-0187", "700 Penhorn Ave", "Secaucus", "NJ", "07094", 30, "NJ"),
    ("Atlas Global Logistics", "Atlas Global Logistics Corp", "billing@atlasgl.example",
     "(732) 555-0116", "1 Industrial Way", "Carteret", "NJ", "07008", 30, "NJ"),
    ("Evergreen Home Goods", "Evergreen Home Goods LLC", "ap@evergreenhg.example",
     "(609) 555-0149", "300 Station Rd", "Cranbury", "NJ", "08512", 30, "NJ"),
    ("Summit Electronics Import", "Summit Electronics Import Co", "ap@summitei.example",
     "(562) 555-0172", "19200 S Reyes Ave", "Rancho Dominguez", "CA", "90221", 30, "LA"),
    ("Redwood Outdoor Supply", "Redwood Outdoor Supply Inc", "payables@redwoodoutdoor.example",
     "(951) 555-0138", "4500 Hamner Ave", "Eastvale", "CA", "91752", 60, "LA"),
    ("Magnolia Foods", "Magnolia Foods Inc", "ap@magnoliafoods.example", "(912) 555-0199",
     "200 Grange Rd", "Port Wentworth", "GA", "31407", 30, "SAV"),
    ("Bayou Chemical Trading", "Bayou Chemical Trading LLC", "ap@bayouchem.example",
     "(281) 555-0121", "12000 Port Rd", "Seabrook", "TX", "77586", 30, "HOU"),
    ("Keystone Auto Parts", "Keystone Auto Parts Distributors", "ap@keystoneauto.example",
     "(908) 555-0163", "1000 Jefferson Ave", "Elizabeth", "NJ", "07201", 30, "NJ"),
    ("Silverline Retail Group", "Silverline Retail Group Inc", "vendorpay@silverline.example",
     "(909) 555-0108", "3000 E Philadelphia St", "Ontario", "CA", "91761", 45, "LA"),
    ("Cypress Paper & Packaging", "Cypress Paper & Packaging Co", "ap@cypresspaper.example",
     "(912) 555-0185", "60 Logistics Center Pkwy", "Rincon", "GA", "31326", 30, "SAV"),
    ("Northbound Transload", "Northbound Transload Services", "ar@northbound.example",
     "(713) 555-0146", "7400 Navigation Blvd", "Houston", "TX", "77011", 30, "HOU"),
]  # fmt: skip

# code, name, description, default rate
CHARGE_CODES = [
    ("DRAY", "Drayage", "Base drayage rate, port to door", Decimal("475.00")),
    ("FSC", "Fuel surcharge", "Fuel surcharge on the base rate", Decimal("118.75")),
    ("CHAS", "Chassis", "Chassis rental per day", Decimal("45.00")),
    ("PREPULL", "Pre-pull", "Pull from terminal to yard ahead of delivery", Decimal("150.00")),
    ("STOR", "Storage", "Yard storage per day", Decimal("85.00")),
    ("WAIT", "Waiting time", "Detention at shipper/consignee per hour", Decimal("95.00")),
    ("PERDIEM", "Per diem", "Container per diem passed through per day", Decimal("125.00")),
    ("OVWT", "Overweight", "Overweight container surcharge", Decimal("175.00")),
    ("HAZ", "Hazmat", "Hazardous materials handling", Decimal("250.00")),
    ("TOLL", "Tolls", "Bridge and road tolls", Decimal("38.50")),
]
OWNER_CODES = ["MSCU", "MAEU", "CMAU", "HLXU", "OOLU", "TGHU", "MEDU", "CSNU", "EGHU", "TCNU"]
ACCESSORIALS = ["CHAS", "PREPULL", "STOR", "WAIT", "PERDIEM", "OVWT", "HAZ", "TOLL"]


def _money(value: Decimal | int) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class Seeder:
    def __init__(self, *, seed: int, invoices: int, company: Company | None = None) -> None:
        self.rng = random.Random(seed)
        self.invoice_count = invoices
        self.company = company or services.company_get_default()
        self.containers: set[str] = set()
        self.load_seq = 1000

    # --- reference data ------------------------------------------------------------------

    def customers(self) -> list[tuple[Customer, str]]:
        result = []
        for name, company_name, email, phone, street, city, state, zip_, terms, region in CUSTOMERS:
            customer = services.customer_create(
                company=self.company,
                display_name=name,
                company_name=company_name,
                billing_email=email,
                phone=phone,
                address_line1=street,
                city=city,
                state=state,
                postal_code=zip_,
                terms_days=terms,
            )
            result.append((customer, region))
        return result

    def charge_codes(self) -> dict[str, ChargeCode]:
        codes = {}
        for code, name, description, rate in CHARGE_CODES:
            existing = ChargeCode.objects.filter(company=self.company, code=code).first()
            codes[code] = existing or services.charge_code_create(
                company=self.company,
                code=code,
                name=name,
                description=description,
                default_rate=rate,
            )
        return codes

    def container(self) -> str:
        while True:
            prefix = f"{self.rng.choice(OWNER_CODES)}{self.rng.randint(0, 999999):06d}"
            number = prefix + str(iso6346_check_digit(prefix))
            if number not in self.containers:
                self.containers.add(number)
                return number

    def load(self, *, region: str, invoice_date: date) -> Load:
        self.load_seq += 1
        place = REGIONS[region]
        pickup = invoice_date - timedelta(days=self.rng.randint(2, 9))
        has_ref = self.rng.random() < 0.5
        return services.load_create(
            company=self.company,
            load_number=f"LD-{self.load_seq}",
            container_number=self.container(),
            po_number=str(self.rng.randint(4500000, 4599999)),
            bol_number=f"{self.rng.choice(['MEDU', 'MAEU', 'COSU', 'HLCU'])}"
            f"{self.rng.randint(10000000, 99999999)}",
            reference_number=f"REF-{self.rng.randint(10000, 99999)}" if has_ref else "",
            pickup_location=self.rng.choice(place.terminals),
            delivery_location=self.rng.choice(place.warehouses),
            pickup_date=pickup,
            delivery_date=pickup + timedelta(days=self.rng.randint(0, 2)),
        )

    # --- invoices ------------------------------------------------------------------------

    def lines(
        self, codes: dict[str, ChargeCode], *, base: bool, accessorials: int
    ) -> list[services.LineSpec]:
        specs = []
        if base:
            dray = _money(self.rng.choice([395, 425, 450, 475, 525, 575, 650, 725]))
            specs.append(services.LineSpec(charge_code=codes["DRAY"], rate=dray))
            fsc = _money(dray * Decimal(self.rng.choice(["0.22", "0.25", "0.28", "0.31"])))
            specs.append(
                services.LineSpec(charge_code=codes["FSC"], rate=fsc, note="Fuel surcharge")
            )
        for code in self.rng.sample(ACCESSORIALS, accessorials):
            specs.append(self.accessorial(codes[code]))
        return specs

    def accessorial(self, code: ChargeCode) -> services.LineSpec:
        rng = self.rng
        if code.code in {"CHAS", "STOR", "PERDIEM"}:
            days = rng.randint(1, 5)
            unit = {"CHAS": "Chassis", "STOR": "Storage", "PERDIEM": "Per diem"}[code.code]
            note = f"{unit} {days} day{'s' if days > 1 else ''}"
            return services.LineSpec(
                charge_code=code, rate=code.default_rate, quantity=Decimal(days), note=note
            )
        if code.code == "WAIT":
            hours = rng.randint(1, 4)
            note = f"Waiting {hours} hr{'s' if hours > 1 else ''} at consignee (2 hrs free)"
            return services.LineSpec(
                charge_code=code, rate=code.default_rate, quantity=Decimal(hours), note=note
            )
        notes = {
            "PREPULL": "Pre-pull to yard, last free day",
            "OVWT": "Gross weight 47,800 lbs, tri-axle chassis",
            "HAZ": "Hazmat class 3 placards",
            "TOLL": "Vincent Thomas Bridge / NJ Turnpike tolls",
        }
        return services.LineSpec(charge_code=code, rate=code.default_rate, note=notes[code.code])

    def invoice(
        self, number: int, customers: list[tuple[Customer, str]], codes: dict[str, ChargeCode]
    ) -> Invoice:
        rng = self.rng
        customer, region = rng.choice(customers)
        invoice_date = BASE_DATE - timedelta(days=rng.randint(0, 60))
        roll = rng.random()
        if roll < 0.15:  # combined: one charge set per load
            sets = [
                services.ChargeSetSpec(
                    load=self.load(region=region, invoice_date=invoice_date),
                    lines=self.lines(codes, base=True, accessorials=rng.randint(0, 2)),
                )
                for _ in range(rng.randint(2, 4))
            ]
        elif roll < 0.22:  # one load billed in two sets: line haul, then accessorials
            load = self.load(region=region, invoice_date=invoice_date)
            sets = [
                services.ChargeSetSpec(
                    load=load, lines=self.lines(codes, base=True, accessorials=0), label="Line haul"
                ),
                services.ChargeSetSpec(
                    load=load,
                    lines=self.lines(codes, base=False, accessorials=rng.randint(1, 3)),
                    label="Accessorials",
                ),
            ]
        else:
            sets = [
                services.ChargeSetSpec(
                    load=self.load(region=region, invoice_date=invoice_date),
                    lines=self.lines(codes, base=True, accessorials=rng.randint(0, 2)),
                )
            ]
        status_roll = rng.random()
        if status_roll < 0.05:
            status = Invoice.Status.DRAFT
        elif status_roll < 0.55:
            status = Invoice.Status.APPROVED
        else:
            status = Invoice.Status.BILLED
        return services.invoice_create(
            company=self.company,
            customer=customer,
            doc_number=f"INV-{number}",
            invoice_date=invoice_date,
            charge_sets=sets,
            status=status,
            memo=f"Drayage services {invoice_date:%B %Y}",
        )

    # --- payments and credit memos -----------------------------------------------------

    def payments(self, invoices: list[Invoice]) -> int:
        rng = self.rng
        billable = [i for i in invoices if i.status != Invoice.Status.DRAFT]
        wanted = min(len(billable), round(len(invoices) * 0.4))
        chosen = sorted(rng.sample(billable, wanted), key=lambda i: i.doc_number)
        by_customer: dict[int, list[Invoice]] = {}
        for invoice in chosen:
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
        count = 0
        for group in by_customer.values():
            while group:
                take = rng.randint(2, 3) if len(group) > 1 and rng.random() < 0.3 else 1
                batch, group = group[:take], group[take:]
                applications = []
                for invoice in batch:
                    if rng.random() < 0.25:
                        share = Decimal(rng.choice(["0.5", "0.6", "0.75", "0.9"]))
                        applications.append((invoice, _money(invoice.total * share)))
                    else:
                        applications.append((invoice, invoice.total))
                amount = sum((a for _, a in applications), Decimal("0"))
                latest = max(i.invoice_date for i in batch)
                method = rng.choice(list(Payment.Method.values))
                prefix = {"check": "CHK", "ach": "ACH", "wire": "WIRE", "card": "CARD"}[method]
                count += 1
                services.payment_create(
                    company=self.company,
                    customer=batch[0].customer,
                    amount=amount,
                    payment_date=min(BASE_DATE, latest + timedelta(days=rng.randint(5, 40))),
                    applications=applications,
                    reference_number=f"{prefix}-{rng.randint(100000, 999999)}",
                    method=method,
                )
        return count

    def credit_memos(self, invoices: list[Invoice], codes: dict[str, ChargeCode]) -> int:
        rng = self.rng
        candidates = [
            i
            for i in invoices
            if i.status in {Invoice.Status.APPROVED, Invoice.Status.BILLED}
            and not i.applications.exists()
        ]
        reasons = [
            ("WAIT", "Waiting time billed in error: within free time"),
            ("CHAS", "Chassis days corrected per gate-out ticket"),
            ("DRAY", "Rate adjustment agreed with customer"),
            ("STOR", "Storage waived: terminal congestion"),
        ]
        count = 0
        for number, invoice in enumerate(rng.sample(candidates, min(len(candidates), 6))):
            code, reason = rng.choice(reasons)
            amount = min(_money(rng.choice([45, 75, 95, 125, 150])), invoice.total - CENT)
            services.credit_memo_create(
                company=self.company,
                customer=invoice.customer,
                number=f"CM-{5001 + number}",
                memo_date=min(BASE_DATE, invoice.invoice_date + timedelta(days=7)),
                lines=[(codes[code], amount, reason)],
                invoice=invoice,
                reason=reason,
            )
            count += 1
        return count

    @transaction.atomic
    def run(self) -> dict[str, int]:
        customers = self.customers()
        codes = self.charge_codes()
        invoices = [
            self.invoice(FIRST_DOC + n, customers, codes) for n in range(self.invoice_count)
        ]
        payments = self.payments(invoices)
        credit_memos = self.credit_memos(invoices, codes)
        return {
            "customers": len(customers),
            "charge_codes": len(codes),
            "invoices": len(invoices),
            "combined_invoices": sum(1 for i in invoices if i.charge_sets.count() > 1),
            "payments": payments,
            "credit_memos": credit_memos,
        }


USERS = [
    # username, password, group, is_staff, is_superuser
    ("finance", "finance", "Finance", False, False),
    ("support", "support", "Support", True, False),
    ("admin", "admin", None, True, True),
]


def ensure_users(company: Company) -> list[str]:
    """The demo users, members of `company` (finance as Finance, support as Support)."""
    created = []
    for username, password, group, is_staff, is_superuser in USERS:
        user, new = User.objects.get_or_create(
            username=username,
            defaults={
                "is_staff": is_staff,
                "is_superuser": is_superuser,
                "email": f"{username}@portpro.example",
            },
        )
        if new:
            user.set_password(password)
            user.save()
            created.append(username)
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
            Membership.objects.get_or_create(
                user=user, company=company, defaults={"role": group.lower()}
            )
    return created


class Command(BaseCommand):
    help = "Seed realistic drayage demo data (deterministic, idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--invoices", type=int, default=200, help="How many invoices (default 200)."
        )
        parser.add_argument(
            "--with-users",
            action="store_true",
            help="Also create the demo users finance/finance, support/support, admin/admin.",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the summary as JSON."
        )
        parser.add_argument("--company", default="", help="Seed this tenant (default company).")

    def handle(
        self,
        *args: Any,
        seed: int,
        invoices: int,
        with_users: bool,
        as_json: bool = False,
        company: str = "",
        **options: Any,
    ) -> None:
        summary: dict[str, Any] = {}
        try:
            tenant = services.company_get(name=company)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if with_users:
            summary["users_created"] = ensure_users(tenant)
        marker = f"INV-{FIRST_DOC}"
        if Invoice.objects.filter(company=tenant, doc_number=marker).exists():
            summary["status"] = "already seeded"
            summary.update(self.counts(tenant))
        else:
            summary.update(Seeder(seed=seed, invoices=invoices, company=tenant).run())
            summary["status"] = "seeded"
        # Payables on their own marker: a demo seeded before they existed gets them too.
        if not Vendor.objects.filter(company=tenant).exists():
            with transaction.atomic():
                seeder = PayablesSeeder(seed=seed, company=tenant, base_date=BASE_DATE)
                summary.update(seeder.run())
            summary["status"] = "seeded"
        else:
            summary.update(self.payables_counts(tenant))
        summary["load_documents"] = seed_documents(company=tenant) or (
            LoadDocument.objects.filter(company=tenant).count()
        )
        self.report(summary, as_json=as_json)

    @staticmethod
    def counts(company: Company) -> dict[str, int]:
        return {
            "customers": Customer.objects.filter(company=company).count(),
            "charge_codes": ChargeCode.objects.filter(company=company).count(),
            "invoices": Invoice.objects.filter(company=company).count(),
            "payments": Payment.objects.filter(company=company).count(),
            "credit_memos": CreditMemo.objects.filter(company=company).count(),
        }

    @staticmethod
    def payables_counts(company: Company) -> dict[str, int]:
        return {
            "vendors": Vendor.objects.filter(company=company).count(),
            "pay_codes": PayCode.objects.filter(company=company).count(),
            "bills": Bill.objects.filter(company=company).count(),
            "settlements": Bill.objects.filter(company=company, kind=Bill.Kind.SETTLEMENT).count(),
        }

    def report(self, summary: dict[str, Any], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(summary))
            return
        if summary["status"] == "already seeded":
            self.stdout.write(f"Demo data already seeded (found INV-{FIRST_DOC}); nothing created.")
        else:
            self.stdout.write(self.style.SUCCESS("Demo data seeded."))
        details = ", ".join(
            f"{value} {key.replace('_', ' ')}"
            for key, value in summary.items()
            if key not in {"status", "users_created"}
        )
        self.stdout.write(details)
        if summary.get("users_created"):
            self.stdout.write(f"Users created: {', '.join(summary['users_created'])}")
