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
    UsageCounter,
    WebhookDelivery,
    WebhookEvent,
)
from .store import Ctx, canonical_name, entity_create, lock_company, render

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8726400  # ~101 days, Intuit's x_refresh_token_expires_in
DEFAULT_HARD_EXPIRY_DAYS = 1826  # Intuit's 5-year maximum (Nov 2025)

FAULT_FIELDS = {
    "latency_ms", "error_rate", "error_style", "throttle_burst", "commit_then_timeout_rate",
    "timeout_mode", "timeout_sleep_seconds", "ignore_requestid", "expire_tokens_every_seconds",
    "throttle_enabled", "per_minute", "per_second", "batch_per_minute", "throttle_format",
    "warn_duplicate_doc_number",
}  # fmt: skip
# faults_set fields that act once on the company's tokens instead of being stored.
FAULT_ACTIONS = {"expire_tokens", "revoke_refresh_tokens", "refresh_hard_expires_in_days"}


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
    webhook_content_type="",
    coreplus_allowance=None,
) -> SandboxApp:
    """`webhook_content_type` "" = the format's own; `coreplus_allowance` None = the setting."""
    app = SandboxApp(
        name=name,
        client_id=client_id or "AB" + secrets.token_hex(23),
        client_secret=client_secret or secrets.token_hex(20),
        verifier_token=verifier_token or secrets.token_hex(18),
        redirect_uris=list(redirect_uris),
        webhook_url=webhook_url or "",
        webhook_format=webhook_format,
        webhook_content_type=webhook_content_type or "",
        coreplus_allowance=coreplus_allowance,
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


def refresh_hard_expiry_days() -> float:
    return getattr(settings, "QBO_SANDBOX_REFRESH_HARD_EXPIRY_DAYS", DEFAULT_HARD_EXPIRY_DAYS)


def token_create(
    *, app, company, scope="com.intuit.quickbooks.accounting", hard_expires_at=None
) -> Token:
    """A new pair. `hard_expires_at` None = a new grant (a consent): its hard expiry starts now;
    a rotation passes the old token's, so a refresh never extends it."""
    now = timezone.now()
    if hard_expires_at is None:
        hard_expires_at = now + dt.timedelta(days=refresh_hard_expiry_days())
    rolling = now + dt.timedelta(seconds=REFRESH_TOKEN_SECONDS)
    return Token.objects.create(
        app=app,
        company=company,
        scope=scope,
        access_token=_access_token(),
        refresh_token=_refresh_token(),
        access_expires_at=now + dt.timedelta(seconds=ACCESS_TOKEN_SECONDS),
        refresh_expires_at=min(rolling, hard_expires_at),
        hard_expires_at=hard_expires_at,
    )


def token_hard_expires_at(token) -> dt.datetime:
    if token.hard_expires_at is not None:
        return token.hard_expires_at
    return token.created + dt.timedelta(days=refresh_hard_expiry_days())


def _seconds_until(moment, now) -> int:
    return max(0, round((moment - now).total_seconds()))


def token_payload(token) -> dict:
    now = timezone.now()
    refresh_ends = min(token.refresh_expires_at, token_hard_expires_at(token))
    return {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "realm_id": token.company.realm_id,
        "token_type": "bearer",
        "expires_in": _seconds_until(token.access_expires_at, now),
        "x_refresh_token_expires_in": _seconds_until(refresh_ends, now),
    }


def token_hard_expires_in(token) -> int:
    """Seconds left of the grant's hard expiry (x_refresh_token_hard_expires_in)."""
    return _seconds_until(token_hard_expires_at(token), timezone.now())


@transaction.atomic
def token_hard_expiry_set(*, company, days, app=None) -> int:
    """Give the company's current grants (of one app, or of all) a hard expiry `days` from now
    (0 or less: already past); their rolling expiry is cut to it. How many tokens changed."""
    hard = timezone.now() + dt.timedelta(days=days)
    tokens = Token.objects.select_for_update().filter(company=company, revoked=False)
    if app is not None:
        tokens = tokens.filter(app=app)
    changed = 0
    for token in tokens:
        token.hard_expires_at = hard
        token.refresh_expires_at = min(token.refresh_expires_at, hard)
        token.save(update_fields=["hard_expires_at", "refresh_expires_at"])
        changed += 1
    return changed


def tokens_issue(*, app, company) -> dict:
    """A fresh token pair as if the user had clicked Connect (no consent page)."""
    return token_payload(token_create(app=app, company=company))


def refresh_grace_seconds():
    return getattr(settings, "QBO_SANDBOX_REFRESH_GRACE_SECONDS", 30)


@transaction.atomic
def faults_set(*, company, **fields) -> SandboxCompany:
    unknown = set(fields) - FAULT_FIELDS - FAULT_ACTIONS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    company = SandboxCompany.objects.select_for_update().get(pk=company.pk)
    hard_days = fields.pop("refresh_hard_expires_in_days", None)
    if hard_days is not None:
        token_hard_expiry_set(company=company, days=float(hard_days))
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
        for model in (
            WebhookEvent, WebhookDelivery, UsageCounter, RequestLog, ThrottleBucket, Entity,
            Token, AuthCode,
        ):  # fmt: skip
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
