"""Soak of the embedded demo: `make demo` for SOAK_MINUTES (30) under a steady stream of changes.

From this checkout (run it from a fresh clone), on a free port and a var folder of its own,
exactly as a new user runs it (SQLite, the filesystem broker, no Redis). While it runs, this
process acts like more users of the TMS and of QuickBooks:
- a new invoice every 10 s (finance services, so push on change goes through the broker);
- an edited invoice every 15 s (memo, or its charges and so its total);
- a payment received in QuickBooks every 20 s (the emulator's v3 API, so its webhooks reach
  the app), full or partial, on an invoice QuickBooks still shows open;
- at half time a disconnect and a reconnect through the consent page, as finance (signed in
  to the emulator as its QuickBooks user `books@portpro.example`).
At the end it waits until nothing is owed, then checks: 0 process deaths (the supervisor's
log), 0 "database is locked" in any log, 0 HTTP 5xx, every new and edited invoice synced with
QuickBooks' total equal to ours, no DocNumber twice in QuickBooks, every QuickBooks payment
recorded exactly once in the TMS with QuickBooks' balance and the matching paid status.
Figures go to bench/results/soak-latest.json and stdout; exit code 0 when everything held.

Usage: SOAK_MINUTES=30 .venv/bin/python bench/soak_demo.py
"""

import json
import os
import random
import re
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import demo_smoke as smoke  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
SETTLE_WITHIN = 300
RESULTS = ROOT / "bench" / "results" / "soak-latest.json"


def setup_django(var_dir: Path, port: int) -> None:
    os.environ.update(
        VAR_DIR=str(var_dir),
        QBO_SANDBOX_ENABLED="1",
        QBO_ENVIRONMENT="local",
        QBO_LOCAL_BASE_URL=f"http://127.0.0.1:{port}/qbo-sandbox",
        DJANGO_SETTINGS_MODULE="portpro_qb.settings",
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()


class Actor:
    """TMS users and a QuickBooks user, changing things at a steady pace."""

    def __init__(self, base: str, rng: random.Random):
        from finance.models import ChargeCode, Company, Customer
        from qbo_sandbox.models import SandboxApp, SandboxCompany
        from sync.models import QuickBooksConnection

        self.base = base
        self.rng = rng
        self.company = Company.objects.get()
        self.realm = QuickBooksConnection.objects.get(company=self.company).realm_id
        self.customers = list(Customer.objects.filter(sync_status="synced"))
        self.codes = list(ChargeCode.objects.exclude(qb_id=""))
        self.sandbox = SandboxCompany.objects.get(realm_id=self.realm)
        self.app = SandboxApp.objects.get(client_id="portpro-local-client")
        self.token = ""
        self.created: list[int] = []
        self.edited: set[int] = set()
        self.qb_payments: list[str] = []
        self.failures: list[str] = []
        self.counter = 0

    def new_invoice(self) -> None:
        from finance import services
        from finance.validators import iso6346_check_digit

        self.counter += 1
        prefix = f"SOKU{self.counter:06d}"
        load = services.load_create(
            company=self.company,
            load_number=f"SOAK-L{self.counter:05d}",
            container_number=prefix + str(iso6346_check_digit(prefix)),
            po_number=f"PO-{self.rng.randint(10000, 99999)}",
        )
        lines = [
            services.LineSpec(
                charge_code=self.rng.choice(self.codes),
                rate=Decimal(self.rng.randint(5000, 90000)) / 100,
                note=f"soak line {n + 1}",
            )
            for n in range(self.rng.randint(1, 3))
        ]
        invoice = services.invoice_create(
            company=self.company,
            customer=self.rng.choice(self.customers),
            doc_number=f"SOAK-{self.counter:05d}",
            invoice_date=date(2026, 11, 20),
            charge_sets=[services.ChargeSetSpec(load=load, lines=lines)],
        )
        self.created.append(invoice.pk)

    def edit_invoice(self) -> None:
        from finance import services
        from finance.models import Invoice

        candidates = Invoice.objects.filter(pk__in=self.created, status="approved")
        invoice = candidates.order_by("?").first()
        if invoice is None:
            return
        if self.rng.random() < 0.5:
            services.invoice_update(invoice=invoice, memo=f"edited at {time.strftime('%X')}")
        else:
            load = invoice.charge_sets.first().load
            services.invoice_replace_charges(
                invoice=invoice,
                charge_sets=[
                    services.ChargeSetSpec(
                        load=load,
                        lines=[
                            services.LineSpec(
                                charge_code=self.rng.choice(self.codes),
                                rate=Decimal(self.rng.randint(5000, 90000)) / 100,
                            )
                        ],
                    )
                ],
            )
        self.edited.add(invoice.pk)

    def _api(self, method: str, path: str, **kwargs):
        from qbo_sandbox import services as sandbox

        for _ in range(2):
            if not self.token:
                self.token = sandbox.tokens_issue(app=self.app, company=self.sandbox)[
                    "access_token"
                ]
            response = requests.request(
                method,
                f"{self.base}/qbo-sandbox/v3/company/{self.realm}/{path}",
                params={"minorversion": 75},
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                timeout=30,
                **kwargs,
            )
            if response.status_code != 401:
                return response
            self.token = ""
        return response

    def receive_payment(self) -> None:
        from finance.models import Invoice
        from qbo_sandbox.models import Entity

        open_ids = [
            e.qbo_id
            for e in Entity.objects.filter(
                company=self.sandbox, entity_type="Invoice", deleted=False
            )
            if Decimal(str(e.data.get("Balance") or 0)) > 0
        ]
        from finance.services import invoice_open_balance

        # Invoices both sides agree on (a TMS payment still on Problem Sync is not in QuickBooks).
        ours = [
            invoice
            for invoice in Invoice.objects.filter(
                qb_id__in=[str(i) for i in open_ids], sync_status="synced"
            )
            if invoice.qb_balance in (None, invoice_open_balance(invoice))
        ]
        if not ours:
            return
        invoice = self.rng.choice(ours)
        remote = Entity.objects.get(
            company=self.sandbox, entity_type="Invoice", qbo_id=int(invoice.qb_id)
        )
        balance = Decimal(str(remote.data["Balance"]))
        amount = balance if self.rng.random() < 0.6 else (balance / 2).quantize(Decimal("0.01"))
        response = self._api(
            "POST",
            "payment",
            json={
                "CustomerRef": {"value": invoice.customer.qb_id},
                "TotalAmt": str(amount),
                "Line": [
                    {
                        "Amount": str(amount),
                        "LinkedTxn": [{"TxnId": invoice.qb_id, "TxnType": "Invoice"}],
                    }
                ],
            },
        )
        if response.status_code == 200:
            self.qb_payments.append(str(response.json()["Payment"]["Id"]))
        elif response.status_code != 429:  # the realm's budget is shared with the sync
            self.failures.append(f"payment in QuickBooks answered {response.status_code}")


def reconnect(base: str) -> dict:
    session = requests.Session()
    smoke.login(session, base, "finance", "finance")
    started = time.monotonic()
    smoke.post(session, base, "/quickbooks/disconnect/", allow_redirects=False, timeout=30)
    disconnect = time.monotonic() - started
    time.sleep(20)  # a while disconnected: changes pile up and must all go after reconnecting
    response = smoke.post(session, base, "/quickbooks/connect/", allow_redirects=False, timeout=30)
    consent = session.get(response.headers["Location"], timeout=30)
    if 'name="password"' in consent.text:
        # The emulator's own sign-in, as its QuickBooks user (the TMS login does not count).
        smoke.sandbox_signin(session, consent)
        consent = session.get(response.headers["Location"], timeout=30)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', consent.text))
    realm = re.search(r'name="realm_id" value="(\d+)"', consent.text).group(1)
    form = {k: fields[k] for k in ("client_id", "redirect_uri", "state", "scope", "response_type")}
    started = time.monotonic()
    answer = session.post(
        consent.url,
        data={**form, "realm_id": realm, "action": "connect",
              "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
        headers={"Referer": consent.url},
        allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    session.get(answer.headers["Location"], allow_redirects=False, timeout=30)
    return {
        "disconnect_s": round(disconnect, 2),
        "reconnect_s": round(time.monotonic() - started, 2),
    }


def owed() -> int:
    """Records still owed to QuickBooks, plus QuickBooks changes not yet applied (a webhook event
    waiting for its retry, e.g. after a 429 paused the realm)."""
    from finance.registry import SYNCED_MODELS
    from sync.models import WebhookEvent

    records = sum(
        model.objects.filter(sync_status__in=["pending", "in_flight", "retry_wait"]).count()
        for model in SYNCED_MODELS.values()
    )
    return records + WebhookEvent.objects.filter(processed_at__isnull=True).count()


def verify(actor: Actor, var_dir: Path, log_path: Path) -> dict:
    from collections import Counter

    from finance.models import Invoice, Payment
    from finance.services import invoice_open_balance
    from qbo_sandbox.models import Entity

    remote_invoices = Entity.objects.filter(
        company=actor.sandbox, entity_type="Invoice", deleted=False
    )
    by_id = {str(e.qbo_id): e.data for e in remote_invoices}
    doc_numbers = Counter(e.data.get("DocNumber") for e in remote_invoices)
    checks = {"new_invoices": len(actor.created), "edited_invoices": len(actor.edited)}
    wrong = []
    for invoice in Invoice.objects.filter(pk__in=actor.created):
        remote = by_id.get(invoice.qb_id)
        if invoice.sync_status != "synced" or remote is None:
            wrong.append(
                f"{invoice.doc_number}: {invoice.sync_status}, in QuickBooks: {bool(remote)}"
            )
        elif Decimal(str(remote["TotalAmt"])) != invoice.total:
            wrong.append(f"{invoice.doc_number}: total {invoice.total} vs {remote['TotalAmt']}")
    paid_invoice_ids = set()
    recorded = Counter(Payment.objects.filter(origin="quickbooks").values_list("qb_id", flat=True))
    for qb_id in actor.qb_payments:
        if recorded[qb_id] != 1:
            wrong.append(f"QuickBooks payment {qb_id} recorded {recorded[qb_id]} times")
        payment = Entity.objects.get(company=actor.sandbox, entity_type="Payment", qbo_id=qb_id)
        for line in payment.data.get("Line", []):
            paid_invoice_ids.update(t["TxnId"] for t in line.get("LinkedTxn", []))
    for invoice in Invoice.objects.filter(qb_id__in=paid_invoice_ids):
        balance = Decimal(str(by_id[invoice.qb_id]["Balance"]))
        still_open = min(balance, invoice_open_balance(invoice))
        expected = "paid" if still_open <= 0 else "partially_paid"
        if invoice.qb_balance != balance or invoice.status != expected:
            wrong.append(
                f"{invoice.doc_number}: {invoice.status} / {invoice.qb_balance} in the TMS, "
                f"balance {balance} in QuickBooks"
            )
    logs = {p.name: p.read_text(errors="replace") for p in (var_dir / "logs").glob("*.log")}
    checks.update(
        qb_payments=len(actor.qb_payments),
        invoices_paid_in_quickbooks=len(paid_invoice_ids),
        duplicate_doc_numbers=sum(1 for n in doc_numbers.values() if n > 1),
        process_deaths=log_path.read_text().count(" stopped (exit code"),
        database_locked=sum(text.count("database is locked") for text in logs.values()),
        http_5xx=len(re.findall(r'" 5\d\d ', logs.get("web-access.log", ""))),
        tracebacks=sum(text.count("Traceback") for text in logs.values()),
        wrong_state=wrong[:20],
        wrong_state_count=len(wrong),
        actor_failures=actor.failures[:10],
    )
    return checks


def main() -> int:
    port = smoke.free_port()
    var_dir = ROOT / "var" / "soak"
    demo, log_path, env = smoke.start_demo(var_dir, port)
    base = f"http://127.0.0.1:{port}"
    figures: dict = {"minutes": MINUTES, "started": time.strftime("%Y-%m-%d %H:%M")}
    code = 1
    try:
        figures["serve_s"] = smoke.wait_serving(demo, base, log_path)
        setup_django(var_dir, port)
        smoke.wait(lambda: owed() == 0, SETTLE_WITHIN, "the seeded data settling", 3)
        actor = Actor(base, random.Random(12))
        started = time.monotonic()
        end = started + MINUTES * 60
        half = started + MINUTES * 30
        next_at = {"new": started, "edit": started + 5, "pay": started + 8}
        every = {"new": 10, "edit": 15, "pay": 20}
        actions = {
            "new": actor.new_invoice,
            "edit": actor.edit_invoice,
            "pay": actor.receive_payment,
        }
        samples = []
        while time.monotonic() < end:
            now = time.monotonic()
            for name, due in next_at.items():
                if now >= due:
                    try:
                        actions[name]()
                    except Exception as exc:  # noqa: BLE001 - recorded as a failure of the run
                        actor.failures.append(f"{name}: {exc!r}"[:300])
                    next_at[name] = due + every[name]
            if half and now >= half:
                figures["reconnect"] = reconnect(base)
                smoke.say(f"disconnect/reconnect: {figures['reconnect']}")
                half = 0
            if not samples or now - samples[-1][0] >= 60:
                samples.append((now, owed()))
                smoke.say(
                    f"{(now - started) / 60:.0f} min: {len(actor.created)} new, "
                    f"{len(actor.edited)} edited, {len(actor.qb_payments)} QuickBooks payments, "
                    f"{samples[-1][1]} owed"
                )
            time.sleep(0.5)
        settle_started = time.monotonic()
        smoke.wait(lambda: owed() == 0, SETTLE_WITHIN, "everything settling after the soak", 3)
        figures["settle_s"] = round(time.monotonic() - settle_started, 1)
        figures["max_owed_sampled"] = max(n for _, n in samples)
        figures.update(verify(actor, var_dir, log_path))
        ok = (
            figures["process_deaths"] == 0
            and figures["database_locked"] == 0
            and figures["http_5xx"] == 0
            and figures["wrong_state_count"] == 0
            and figures["duplicate_doc_numbers"] == 0
            and not figures["actor_failures"]
            and all(v < smoke.ACTION_LIMIT for v in figures["reconnect"].values())
        )
        code = 0 if ok else 1
    except (smoke.Failed, requests.RequestException) as exc:
        figures["failed"] = str(exc)
        smoke.say(f"FAILED: {exc}")
    finally:
        if smoke.stop_demo(demo, var_dir):
            figures["left_running_after_ctrl_c"] = True
            code = 1
    figures["passed"] = code == 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
