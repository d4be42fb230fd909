from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from finance.management.payables_seed import CLASHING_VENDOR
from finance.models import ChargeCode, Company, PayCode
from sync.management.commands.sync_status import company_option
from sync.models import QuickBooksConnection
from sync.selectors import connection_for_company
from sync.services.client import QboError
from sync.services.connection import connect_with_tokens
from sync.services.engine import SyncContext
from sync.services.mapping import codes_send

# The QuickBooks user who signs in to the emulator's consent page and UI in the demo (README).
DEMO_USER_EMAIL = "books@portpro.example"
DEMO_USER_PASSWORD = "sandbox"


class Command(BaseCommand):
    help = (
        "Connect the TMS company to a company in the built-in QuickBooks emulator, without a "
        "browser (used by `make demo` and tests)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--realm", help="use this existing emulator company")
        parser.add_argument("--name", default="PortPro Demo Books", help="name of a new company")
        parser.add_argument("--webhook-url", default="", help="where the emulator sends webhooks")
        parser.add_argument("--company", default="", help="the tenant to connect (default company)")
        parser.add_argument(
            "--sandbox-user",
            default=DEMO_USER_EMAIL,
            help=f"the emulator's QuickBooks user who may sign in to this company (password "
            f"{DEMO_USER_PASSWORD!r}; default {DEMO_USER_EMAIL}); one per tenant keeps each "
            "tenant's reconnect to its own company",
        )
        parser.add_argument(
            "--map-charge-codes",
            action="store_true",
            help="map every charge code of the tenant to a QuickBooks item and every pay code to "
            "an account (made when missing)",
        )
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="do nothing when the tenant is connected already (make demo's restarts)",
        )
        parser.add_argument(
            "--demo-conflicts",
            action="store_true",
            help="pre-create QuickBooks data that collides with seeded records and map every "
            "charge code except HAZ and every pay code, so the Problem Sync page has real cases "
            "to fix",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.QBO_ENVIRONMENT != "local" or not apps.is_installed("qbo_sandbox"):
            raise CommandError(
                "connect_sandbox needs QBO_ENVIRONMENT=local and QBO_SANDBOX_ENABLED=1."
            )
        from qbo_sandbox import services as sandbox
        from qbo_sandbox.models import SandboxApp, SandboxCompany

        company = company_option(options["company"])
        if options["if_needed"] and connection_for_company(company=company).is_usable:
            self.stdout.write(f"{company} is connected to QuickBooks already.")
            return
        if options["realm"]:
            realm = SandboxCompany.objects.filter(realm_id=options["realm"]).first()
            if realm is None:
                raise CommandError(f"No emulator company with realm {options['realm']}.")
        else:
            realm = sandbox.company_create(name=options["name"])
        # Reconnecting goes through the emulator's sign-in: a QuickBooks user of this company.
        sandbox.user_ensure(
            email=options["sandbox_user"],
            password=DEMO_USER_PASSWORD,
            name="PortPro Books",
            realm_ids=[realm.realm_id],
        )
        webhook_url = options["webhook_url"] or settings.QBO_REDIRECT_URI.replace(
            "/quickbooks/callback/", "/quickbooks/webhook/"
        )
        app = SandboxApp.objects.filter(client_id=settings.QBO_CLIENT_ID).first()
        if app is None:
            app = sandbox.app_create(
                redirect_uris=[settings.QBO_REDIRECT_URI],
                webhook_url=webhook_url,
                client_id=settings.QBO_CLIENT_ID,
                client_secret=settings.QBO_CLIENT_SECRET,
                verifier_token=settings.QBO_WEBHOOK_VERIFIER_TOKEN,
                name="PortPro TMS",
            )
        tokens = sandbox.tokens_issue(app=app, company=realm)
        connection = connect_with_tokens(
            connection=connection_for_company(company=company),
            realm_id=tokens["realm_id"],
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            expires_in=tokens["expires_in"],
            refresh_expires_in=tokens["x_refresh_token_expires_in"],
            company_name=realm.name,
            environment="local",
        )
        self.stdout.write(
            f"Connected {company} to emulator company {realm.name} ({realm.realm_id})"
        )
        self.stdout.write(
            f"QuickBooks sandbox user: {options['sandbox_user']} / {DEMO_USER_PASSWORD} "
            "(emulator sign-in)"
        )
        if options["demo_conflicts"]:
            self._demo_conflicts(company, connection)
        elif options["map_charge_codes"]:
            outcome = codes_send(codes=ChargeCode.objects.filter(company=company))
            self.stdout.write(f"Mapped charge codes to QuickBooks items: {outcome}")
            self._map_pay_codes(company)

    def _map_pay_codes(self, company: Company) -> None:
        outcome = codes_send(codes=PayCode.objects.filter(company=company))
        self.stdout.write(f"Mapped pay codes to QuickBooks accounts: {outcome}")

    def _demo_conflicts(self, company: Company, connection: QuickBooksConnection) -> None:
        ctx = SyncContext.for_company(company.pk)
        try:
            ctx.session.create(
                "Customer",
                {
                    "DisplayName": "Harbor Logistics LLC",
                    "PrimaryEmailAddr": {"Address": "ap@harborlogistics.example"},
                },
                request_id="pqb-demo-harbor",
            )
        except QboError as error:
            self.stdout.write(f"(Harbor Logistics already in QuickBooks: {error.code})")
        outcome = codes_send(codes=ChargeCode.objects.filter(company=company).exclude(code="HAZ"))
        self.stdout.write(f"Mapped charge codes to QuickBooks items (HAZ left unmapped): {outcome}")
        # Payables: a QuickBooks customer holds one of our carriers' names (names are one list
        # there), so that carrier and its bills stop on Problem Sync until someone chooses.
        try:
            ctx.session.create(
                "Customer", {"DisplayName": CLASHING_VENDOR}, request_id="pqb-demo-vendor-clash"
            )
        except QboError as error:
            self.stdout.write(f"({CLASHING_VENDOR} already a QuickBooks customer: {error.code})")
        self._map_pay_codes(company)
