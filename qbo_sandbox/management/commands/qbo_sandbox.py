"""manage.py qbo_sandbox create-company | create-user | create-app | issue-tokens | faults |
usage | allowance | token-expiry | reset"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from qbo_sandbox import services, usage
from qbo_sandbox.models import SandboxApp, SandboxCompany
from qbo_sandbox.ui import fault_state


class Command(BaseCommand):
    help = "Manage the local QuickBooks Online emulator (companies, users, apps, tokens, faults)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)

        p = sub.add_parser("create-company", help="Create a sandbox company; prints its realm id.")
        p.add_argument("--name", required=True)
        p.add_argument("--realm", default=None, help="Use this realm id instead of a random one.")
        p.add_argument("--empty", action="store_true", help="No default accounts, items, terms.")
        p.add_argument("--json", action="store_true")

        p = sub.add_parser(
            "create-user",
            help="Create a QuickBooks sandbox user who signs in to the consent page and the UI; "
            "again for the same email: sets the password, adds the companies.",
        )
        p.add_argument("--email", required=True)
        p.add_argument("--password", required=True)
        p.add_argument("--name", default=None)
        p.add_argument(
            "--realm",
            action="append",
            dest="realms",
            metavar="REALM",
            default=None,
            help="A company the user may access (repeat for more). Without it, a new user may "
            "access every company.",
        )
        p.add_argument("--json", action="store_true")

        p = sub.add_parser(
            "create-app", help="Register an app; prints client id, secret, verifier."
        )
        p.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
        p.add_argument("--webhook-url", default="")
        p.add_argument("--webhook-format", choices=["cloudevents", "legacy"], default="cloudevents")
        p.add_argument("--client-id", default=None)
        p.add_argument("--client-secret", default=None)
        p.add_argument("--verifier-token", default=None)
        p.add_argument("--name", default="Sandbox app")
        p.add_argument(
            "--webhook-content-type",
            choices=["application/cloudevents+json", "application/json"],
            default="",
            help="Content-Type of webhook deliveries (default: the format's own).",
        )
        p.add_argument(
            "--coreplus-allowance",
            type=int,
            default=None,
            help="Monthly CorePlus calls over all companies (default QBO_SANDBOX_COREPLUS_ALLOWANCE).",
        )
        p.add_argument("--json", action="store_true")

        p = sub.add_parser("issue-tokens", help="Issue a token pair without the consent page.")
        p.add_argument("--client-id", required=True)
        p.add_argument("--realm", required=True)
        p.add_argument("--json", action="store_true")

        p = sub.add_parser("faults", help="Show or set fault injection for a company.")
        p.add_argument("--realm", required=True)
        p.add_argument("--latency-ms", type=int)
        p.add_argument("--error-rate", type=float)
        p.add_argument("--error-style", choices=["random", "gateway", "systemfault"])
        p.add_argument("--throttle-burst", type=int, help="The next N requests get a 429.")
        p.add_argument("--throttle-per-min", type=int, dest="per_minute")
        p.add_argument("--throttle-per-sec", type=int, dest="per_second")
        p.add_argument("--batch-per-min", type=int, dest="batch_per_minute")
        p.add_argument("--throttle", choices=["on", "off", "default"])
        p.add_argument("--throttle-format", choices=["xml", "json"])
        p.add_argument("--commit-then-timeout-rate", type=float)
        p.add_argument("--timeout-mode", choices=["504", "sleep"])
        p.add_argument("--timeout-sleep-seconds", type=float)
        group = p.add_mutually_exclusive_group()
        group.add_argument("--ignore-requestid", action="store_true", default=None)
        group.add_argument(
            "--honour-requestid", action="store_false", dest="ignore_requestid", default=None
        )
        p.add_argument("--expire-tokens", action="store_true", help="Expire all access tokens now.")
        p.add_argument("--expire-tokens-every-seconds", type=int)
        p.add_argument("--revoke-refresh-tokens", action="store_true")
        p.add_argument("--clear", action="store_true", help="Reset every fault to its default.")
        p.add_argument("--json", action="store_true")

        p = sub.add_parser("usage", help="Metered API calls (Core, CorePlus) of a company per app.")
        p.add_argument("--realm", required=True)
        p.add_argument("--client-id", default=None, help="Only this app.")
        p.add_argument("--month", default=None, help="YYYY-MM (UTC); default this month.")
        p.add_argument("--reset", action="store_true", help="Forget that month's counts first.")
        p.add_argument("--json", action="store_true")

        p = sub.add_parser("allowance", help="Show or set an app's monthly CorePlus allowance.")
        p.add_argument("--client-id", required=True)
        group = p.add_mutually_exclusive_group()
        group.add_argument("--coreplus", type=int, default=None, help="Calls per month.")
        group.add_argument("--default", action="store_true", help="Back to the setting's value.")
        p.add_argument("--json", action="store_true")

        p = sub.add_parser(
            "token-expiry", help="Set the refresh-token hard expiry of a company's current grants."
        )
        p.add_argument("--realm", required=True)
        p.add_argument("--client-id", default=None, help="Only this app's grant.")
        p.add_argument(
            "--hard-expires-in-days", type=float, required=True, help="From now; 0 = expired."
        )
        p.add_argument("--json", action="store_true")

        sub.add_parser("reset", help="Delete every sandbox company, app, token and object.")

    def handle(self, *args, **opts):
        handler = getattr(self, "cmd_" + opts["subcommand"].replace("-", "_"))
        handler(opts)

    def _out(self, opts, data, text):
        self.stdout.write(json.dumps(data) if opts.get("json") else text)

    def cmd_create_company(self, opts):
        company = services.company_create(
            name=opts["name"], realm_id=opts["realm"], seed=not opts["empty"]
        )
        data = {"realm_id": company.realm_id, "name": company.name}
        self._out(opts, data, company.realm_id)

    def cmd_create_user(self, opts):
        try:
            user = services.user_ensure(
                email=opts["email"],
                password=opts["password"],
                name=opts["name"],
                realm_ids=opts["realms"],
            )
        except (ValueError, ValidationError) as exc:
            raise CommandError(str(exc))
        realms = None
        access = "every company"
        if not user.all_companies:
            realms = list(user.companies.order_by("realm_id").values_list("realm_id", flat=True))
            access = ", ".join(realms) or "no company"
        data = {"email": user.email, "name": user.name, "all_companies": user.all_companies,
                "realm_ids": realms}  # fmt: skip
        self._out(opts, data, f"{user.email} may access {access}")

    def cmd_create_app(self, opts):
        app = services.app_create(
            redirect_uris=opts["redirect_uris"],
            webhook_url=opts["webhook_url"],
            webhook_format=opts["webhook_format"],
            client_id=opts["client_id"],
            client_secret=opts["client_secret"],
            verifier_token=opts["verifier_token"],
            name=opts["name"],
            webhook_content_type=opts["webhook_content_type"],
            coreplus_allowance=opts["coreplus_allowance"],
        )
        data = {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "verifier_token": app.verifier_token,
            "redirect_uris": app.redirect_uris,
            "webhook_url": app.webhook_url,
            "webhook_format": app.webhook_format,
            "webhook_content_type": app.webhook_content_type,
            "coreplus_allowance": usage.allowance(app),
        }
        text = (
            f"client_id={app.client_id}\nclient_secret={app.client_secret}\n"
            f"verifier_token={app.verifier_token}"
        )
        self._out(opts, data, text)

    def _company(self, realm):
        company = SandboxCompany.objects.filter(realm_id=realm).first()
        if company is None:
            raise CommandError(f"no sandbox company with realm id {realm}")
        return company

    def _app(self, client_id):
        app = SandboxApp.objects.filter(client_id=client_id).first()
        if app is None:
            raise CommandError(f"no sandbox app with client id {client_id}")
        return app

    def cmd_issue_tokens(self, opts):
        app = self._app(opts["client_id"])
        data = services.tokens_issue(app=app, company=self._company(opts["realm"]))
        text = "\n".join(f"{k}={v}" for k, v in data.items())
        self._out(opts, data, text)

    def cmd_faults(self, opts):
        company = self._company(opts["realm"])
        if opts["clear"]:
            company = services.faults_clear(company=company)
        names = [
            "latency_ms", "error_rate", "error_style", "throttle_burst", "per_minute", "per_second",
            "batch_per_minute", "throttle_format", "commit_then_timeout_rate", "timeout_mode",
            "timeout_sleep_seconds", "ignore_requestid", "expire_tokens_every_seconds",
        ]  # fmt: skip
        fields = {n: opts[n] for n in names if opts.get(n) is not None}
        if opts["throttle"]:
            fields["throttle_enabled"] = {"on": True, "off": False, "default": None}[
                opts["throttle"]
            ]
        if opts["expire_tokens"]:
            fields["expire_tokens"] = True
        if opts["revoke_refresh_tokens"]:
            fields["revoke_refresh_tokens"] = True
        if fields:
            company = services.faults_set(company=company, **fields)
        state = fault_state(company)
        self._out(opts, state, "\n".join(f"{k}={v}" for k, v in state.items()))

    def cmd_usage(self, opts):
        company = self._company(opts["realm"])
        try:
            month = usage.parse_month(opts["month"]) if opts["month"] else None
        except ValueError:
            raise CommandError("--month must be YYYY-MM")
        scope = {"company": company, "month": month, "client_id": opts["client_id"]}
        if opts["reset"]:
            usage.reset(**scope)
        data = usage.report(**scope)
        self._out(opts, data, _usage_table(data))

    def cmd_allowance(self, opts):
        app = self._app(opts["client_id"])
        if opts["default"]:
            app = usage.allowance_set(app=app, coreplus=None)
        elif opts["coreplus"] is not None:
            try:
                app = usage.allowance_set(app=app, coreplus=opts["coreplus"])
            except ValueError as exc:
                raise CommandError(str(exc))
        month = usage.month_start()
        data = {
            "client_id": app.client_id,
            "coreplus_allowance": usage.allowance(app),
            "from_setting": app.coreplus_allowance is None,
            "month": month.strftime("%Y-%m"),
            "coreplus_used": usage.app_coreplus_used(app.pk, month),
        }
        self._out(opts, data, "\n".join(f"{k}={v}" for k, v in data.items()))

    def cmd_token_expiry(self, opts):
        company = self._company(opts["realm"])
        app = self._app(opts["client_id"]) if opts["client_id"] else None
        days = opts["hard_expires_in_days"]
        changed = services.token_hard_expiry_set(company=company, app=app, days=days)
        data = {"realm_id": company.realm_id, "tokens": changed, "hard_expires_in_days": days}
        self._out(
            opts, data, f"{changed} token(s) of {company.realm_id}: hard expiry in {days} days"
        )

    def cmd_reset(self, opts):
        services.sandbox_reset()
        self.stdout.write("sandbox reset")


USAGE_COLUMNS = ("core", "coreplus", "coreplus_read", "coreplus_query", "coreplus_cdc")


def _usage_table(data):
    """A plain text table: one line per app, then the realm's totals."""
    header = ["client_id", *USAGE_COLUMNS, "allowance_used"]
    rows = [
        [a["client_id"], *(str(a[c]) for c in USAGE_COLUMNS),
         f"{a['allowance_used_percent']}% of {a['coreplus_allowance']}"]
        for a in data["apps"]
    ]  # fmt: skip
    rows.append(["total", str(data["core"]), str(data["coreplus"]), "", "", "", ""])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"realm {data['realm']}, {data['month']} (UTC)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in [header, *rows]]  # fmt: skip
    return "\n".join(lines)
