"""Services other code calls directly (tests, scripts, the app's connect_sandbox command).

All keyword-only; see README.md for the contract.
"""

import datetime as dt
import json
import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from . import webhooks
from .models import (
    AuthCode,
    Entity,
    RequestLog,
    SandboxApp,
    SandboxCompany,
    SandboxUser,
    ThrottleBucket,
    Token,
    WebhookDelivery,
)
from .store import Ctx, canonical_name, entity_create, lock_company, render

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8726400  # ~101 days, Intuit's x_refresh_token_expires_in

FAULT_FIELDS = {
    "latency_ms", "error_rate", "error_style", "throttle_burst", "commit_then_timeout_rate",
    "timeout_mode", "timeout_sleep_seconds", "ignore_requestid", "expire_tokens_every_seconds",
    "throttle_enabled", "per_minute", "per_second", "batch_per_minute", "throttle_format",
    "warn_duplicate_doc_number",
}  # fmt: skip


def _new_realm_id():
    while True:
        realm = "9341" + "".join(secrets.choice("0123456789") for _ in range(12))
        if not SandboxCompany.objects.filter(realm_id=realm).exists():
            return realm


# What a new QBO company starts with (a trimmed default chart of accounts, items and terms).
SEED = [
    ("Account", {"Name": "Services", "AccountType": "Income", "AccountSubType": "ServiceFeeIncome"}),
    ("Account", {"Name": "Sales of Product Income", "AccountType": "Income",
                 "AccountSubType": "SalesOfProductIncome"}),
    ("Account", {"Name": "Accounts Receivable (A/R)", "AccountType": "Accounts Receivable",
                 "AccountSubType": "AccountsReceivable"}),
    ("Account", {"Name": "Undeposited Funds", "AccountType": "Other Current Asset",
                 "AccountSubType": "UndepositedFunds"}),
    ("Account", {"Name": "Cost of Goods Sold", "AccountType": "Cost of Goods Sold",
                 "AccountSubType": "SuppliesMaterialsCogs"}),
    ("Item", {"Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "1", "name": "Services"}}),
    ("Item", {"Name": "Hours", "Type": "Service", "IncomeAccountRef": {"value": "1", "name": "Services"}}),
    ("Term", {"Name": "Due on receipt", "DueDays": 0}),
    ("Term", {"Name": "Net 30", "DueDays": 30}),
    # Payables (added after the first nine, so their Ids stay): 10 A/P, 11 Checking,
    # 12 Mastercard, 13–18 what a trucking company's bills and expenses go to.
    ("Account", {"Name": "Accounts Payable (A/P)", "AccountType": "Accounts Payable",
                 "AccountSubType": "AccountsPayable"}),
    ("Account", {"Name": "Checking", "AccountType": "Bank", "AccountSubType": "Checking"}),
    ("Account", {"Name": "Mastercard", "AccountType": "Credit Card", "AccountSubType": "CreditCard"}),
    ("Account", {"Name": "Subcontractors", "AccountType": "Cost of Goods Sold",
                 "AccountSubType": "CostOfLaborCos"}),
    ("Account", {"Name": "Contract Labor", "AccountType": "Expense", "AccountSubType": "CostOfLabor"}),
    ("Account", {"Name": "Truck Fuel", "AccountType": "Expense", "AccountSubType": "Auto"}),
    ("Account", {"Name": "Repairs and Maintenance", "AccountType": "Expense",
                 "AccountSubType": "RepairMaintenance"}),
    ("Account", {"Name": "Tolls", "AccountType": "Expense", "AccountSubType": "Auto"}),
    ("Account", {"Name": "Other Expenses", "AccountType": "Expense",
                 "AccountSubType": "OtherBusinessExpenses"}),
]  # fmt: skip


@transaction.atomic
def company_create(*, name, realm_id=None, seed=True) -> SandboxCompany:
    """A new company; `seed` adds QBO's defaults (accounts 1–5, items Services/Hours, terms,
    then the payables accounts 10–18)."""
    company = SandboxCompany(name=name, realm_id=realm_id or _new_realm_id())
    company.full_clean()
    company.save()
    if seed:
        ctx = Ctx(lock_company(company.pk))
        for entity_type, data in SEED:
            entity_create(ctx, entity_type, json.loads(json.dumps(data)))
        company.refresh_from_db()
    return company


@transaction.atomic
def app_create(
    *,
    redirect_uris,
    webhook_url="",
    webhook_format="cloudevents",
    client_id=None,
    client_secret=None,
    verifier_token=None,
    name="Sandbox app",
) -> SandboxApp:
    app = SandboxApp(
        name=name,
        client_id=client_id or "AB" + secrets.token_hex(23),
        client_secret=client_secret or secrets.token_hex(20),
        verifier_token=verifier_token or secrets.token_hex(18),
        redirect_uris=list(redirect_uris),
        webhook_url=webhook_url or "",
        webhook_format=webhook_format,
    )
    app.full_clean()
    app.save()
    return app


def _normal_email(email):
    return (email or "").strip().lower()


@transaction.atomic
def user_ensure(*, email, password, name=None, realm_ids=None) -> SandboxUser:
    """Create a QuickBooks sandbox user, or update the one with this email (idempotent).

    The password is (re)set every time, so a script can always sign in with what it passed.
    `realm_ids` None on creation = every company; a list grants those companies (added to the
    user's list; access is never narrowed here: use the admin for that). ValueError on an
    unknown realm id.
    """
    realm_ids = None if realm_ids is None else list(dict.fromkeys(realm_ids))
    companies = []
    if realm_ids is not None:
        companies = list(SandboxCompany.objects.filter(realm_id__in=realm_ids))
        missing = sorted(set(realm_ids) - {c.realm_id for c in companies})
        if missing:
            raise ValueError(f"no sandbox company with realm id {', '.join(missing)}")
    email = _normal_email(email)
    user = SandboxUser.objects.select_for_update().filter(email=email).first()
    if user is None:
        user = SandboxUser(email=email, all_companies=realm_ids is None)
    if name is not None:
        user.name = name
    user.password = make_password(password)
    user.full_clean()
    user.save()
    if companies:
        user.companies.add(*companies)
    return user


def user_authenticate(*, email, password) -> SandboxUser | None:
    """The user when the password matches, else None (same work either way: no timing hint
    of which emails exist)."""
    user = SandboxUser.objects.filter(email=_normal_email(email)).first()
    if user is None:
        make_password(password)  # as long as a real check, like Django's ModelBackend
        return None
    if not check_password(password, user.password):
        return None
    SandboxUser.objects.filter(pk=user.pk).update(last_signin=timezone.now())
    return user


def user_companies(*, user):
    """The companies this user may see and connect, by name."""
    qs = SandboxCompany.objects.all() if user.all_companies else user.companies.all()
    return qs.order_by("name", "pk")


def _access_token():
    # Intuit access tokens are long opaque JWE strings starting with "eyJ".
    return "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)


def _refresh_token():
    return "RT1-" + secrets.token_hex(2) + "-H0-" + secrets.token_hex(24)


def token_create(*, app, company, scope="com.intuit.quickbooks.accounting") -> Token:
    now = timezone.now()
    return Token.objects.create(
        app=app,
        company=company,
        scope=scope,
        access_token=_access_token(),
        refresh_token=_refresh_token(),
        access_expires_at=now + dt.timedelta(seconds=ACCESS_TOKEN_SECONDS),
        refresh_expires_at=now + dt.timedelta(seconds=REFRESH_TOKEN_SECONDS),
    )


def token_payload(token) -> dict:
    now = timezone.now()
    return {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "realm_id": token.company.realm_id,
        "token_type": "bearer",
        "expires_in": max(0, round((token.access_expires_at - now).total_seconds())),
        "x_refresh_token_expires_in": max(
            0, round((token.refresh_expires_at - now).total_seconds())
        ),
    }


def tokens_issue(*, app, company) -> dict:
    """A fresh token pair as if the user had clicked Connect (no consent page)."""
    return token_payload(token_create(app=app, company=company))


def refresh_grace_seconds():
    return getattr(settings, "QBO_SANDBOX_REFRESH_GRACE_SECONDS", 30)


@transaction.atomic
def faults_set(*, company, **fields) -> SandboxCompany:
    unknown = set(fields) - FAULT_FIELDS - {"expire_tokens", "revoke_refresh_tokens"}
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    company = SandboxCompany.objects.select_for_update().get(pk=company.pk)
    if fields.pop("expire_tokens", False):
        company.tokens_expired_before = timezone.now()
    if fields.pop("revoke_refresh_tokens", False):
        Token.objects.filter(company=company).update(revoked=True)
    for name, value in fields.items():
        setattr(company, name, value)
    company.full_clean()
    company.save()
    return company


@transaction.atomic
def faults_clear(*, company) -> SandboxCompany:
    company = SandboxCompany.objects.select_for_update().get(pk=company.pk)
    defaults = {f.name: f.get_default() for f in SandboxCompany._meta.fields}
    for name in FAULT_FIELDS - {"warn_duplicate_doc_number"}:
        setattr(company, name, defaults[name])
    company.tokens_expired_before = None
    company.save()
    return company


def sandbox_reset():
    """Delete every emulator row (companies, users, apps, tokens, entities, deliveries)."""
    with transaction.atomic():
        for model in (WebhookDelivery, RequestLog, ThrottleBucket, Entity, Token, AuthCode):
            model.objects.all().delete()
        SandboxApp.objects.all().delete()
        SandboxUser.objects.all().delete()
        SandboxCompany.objects.all().delete()


def entity_list(*, company, entity_type, include_deleted=False) -> list[dict]:
    """Every object of a type as QBO renders it; deleted ones (when asked) carry status "Deleted"."""
    entity_type = canonical_name(entity_type) or entity_type
    qs = Entity.objects.filter(company=company, entity_type=entity_type).order_by("qbo_id")
    if not include_deleted:
        qs = qs.filter(deleted=False)
    return [dict(render(e), status="Deleted") if e.deleted else render(e) for e in qs]


def entity_get(*, company, entity_type, qbo_id) -> dict | None:
    """One live object as QBO renders it, or None (missing, deleted or a non-numeric id)."""
    if not str(qbo_id).strip().isdigit():
        return None
    entity_type = canonical_name(entity_type) or entity_type
    entity = Entity.objects.filter(
        company=company, entity_type=entity_type, qbo_id=int(qbo_id), deleted=False
    ).first()
    return render(entity) if entity else None


def flush_webhooks(*, include_future=True, timeout=10.0) -> int:
    """Deliver pending webhooks now, in this thread; returns how many were delivered."""
    return webhooks.flush(include_future=include_future, timeout=timeout)
