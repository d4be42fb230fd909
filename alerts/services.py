"""Alerts: a daily digest of new sync problems per tenant, immediate alerts when a condition
begins (QuickBooks needs reconnecting, its authorization ends within
QBO_TOKEN_EXPIRY_WARNING_DAYS, the workspace's reads reach QBO_COREPLUS_WARN_FRACTION of the
allowance), by e-mail to the members who opted in and to the tenant's Slack-compatible webhook.

How sending stays once-only: an `AlertSent` row is inserted before anything goes out, and its
constraints make the insert the claim (one digest per tenant and slot, one open row per
immediate condition). Mail and the webhook go out after that insert, outside any transaction;
a failure of either is recorded on the row (and the webhook's) and never raises out of a beat
pass. Nothing here calls QuickBooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlparse

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alerts import selectors
from alerts.models import AlertSent, AlertSubscription, TenantAlertWebhook
from finance.models import Company
from finance.registry import record_type

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sync.models import QuickBooksConnection

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
FIRST_DIGEST_WINDOW = timedelta(days=1)  # a tenant's first digest looks back this far


# --- links ------------------------------------------------------------------------------


def tenant_link(*, company: Company, path: str) -> str:
    """An absolute link that opens `path` working in `company` (a member of several tenants
    lands in the one the alert is about, whatever tenant their session was in)."""
    opener = reverse("alerts:open", args=[company.pk])
    return f"{settings.SITE_URL}{opener}?{urlencode({'next': path})}"


def problems_path(*, sync_type: str = "", reason: str = "") -> str:
    params = {k: v for k, v in (("type", sync_type), ("reason", reason)) if v}
    base = reverse("sync:problems")
    return f"{base}?{urlencode(params)}" if params else base


def connection_path() -> str:
    return reverse("finance:quickbooks") + "#connection"


def settings_path() -> str:
    return reverse("finance:quickbooks") + "#alerts"


# --- subscriptions and the webhook --------------------------------------------------------


@transaction.atomic
def subscription_set(
    *, user: User, company: Company, digest: bool, immediate: bool
) -> AlertSubscription:
    """A member's choice for this tenant; anyone else is refused (alerts carry its figures)."""
    if not selectors.is_member(user, company):
        raise PermissionDenied(f"You are not a member of {company}: its alerts are not yours.")
    subscription, _ = AlertSubscription.objects.select_for_update().get_or_create(
        user=user, company=company
    )
    if (subscription.digest, subscription.immediate) != (digest, immediate):
        subscription.digest, subscription.immediate = digest, immediate
        subscription.full_clean()
        subscription.save(update_fields=["digest", "immediate", "updated_at"])
    return subscription


def webhook_url_validate(url: str) -> str:
    """https only; plain http only to this machine (a local receiver), when allowed."""
    url = url.strip()
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if not host or parsed.scheme not in ("https", "http") or any(c.isspace() for c in url):
        raise ValidationError("Enter the webhook's full address, starting with https://.")
    if parsed.scheme == "http" and not (
        host in LOOPBACK_HOSTS and settings.ALERTS_WEBHOOK_ALLOW_HTTP_LOOPBACK
    ):
        raise ValidationError("The webhook address must start with https:// (it carries a key).")
    if parsed.username or parsed.password:
        raise ValidationError("Put no user name or password in the webhook address.")
    if len(url) > 500:
        raise ValidationError("That webhook address is too long (500 characters at most).")
    return url


def mask_url(url: str) -> str:
    """How a webhook address is shown and logged: its host only (the path is the key)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}/…" if parsed.netloc else ""


@transaction.atomic
def webhook_set(
    *, company: Company, user: User, url: str = "", enabled: bool = True, remove: bool = False
) -> TenantAlertWebhook:
    """Set, keep (an empty `url` keeps the stored one) or remove the tenant's webhook."""
    hook, _ = TenantAlertWebhook.objects.select_for_update().get_or_create(company=company)
    if remove:
        hook.url, hook.last_error, hook.last_ok_at, hook.last_sent_at = "", "", None, None
    elif url.strip():
        new = webhook_url_validate(url)
        if new != hook.url:
            hook.url, hook.last_error, hook.last_ok_at, hook.last_sent_at = new, "", None, None
    elif not hook.url:
        raise ValidationError("Enter the webhook's address.")
    hook.enabled = enabled and bool(hook.url)
    hook.updated_by = user
    hook.save()
    logger.info(
        "alert webhook of %s %s by %s: %s",
        company,
        "removed" if remove else "set",
        user.username,
        mask_url(hook.url) or "none",
    )
    return hook


def _scrub(text: str, url: str) -> str:
    """Error messages (requests quotes the address and path) without the webhook's key."""
    parsed = urlparse(url)
    for secret in (url, parsed.path, parsed.query):
        if secret and secret != "/":
            text = text.replace(secret, "/…")
    return text


def webhook_post(*, hook: TenantAlertWebhook, payload: dict[str, Any]) -> str:
    """POST the payload; returns what happened in words, kept on the hook. Never raises."""
    url, now = hook.url, timezone.now()
    try:
        response = requests.post(
            url,
            json=payload,
            timeout=settings.ALERTS_WEBHOOK_TIMEOUT,
            allow_redirects=False,
            headers={"User-Agent": "portpro-qb-alerts"},
        )
    except requests.RequestException as exc:
        result = f"failed: {_scrub(str(exc), url)}"[:300]
    else:
        if 200 <= response.status_code < 300:
            result = f"ok (HTTP {response.status_code})"
        else:
            body = _scrub(response.text[:120].strip(), url)
            result = f"failed: HTTP {response.status_code} {body}".strip()[:300]
    ok = result.startswith("ok")
    changes: dict[str, Any] = {"last_sent_at": now, "last_error": "" if ok else result}
    if ok:
        changes["last_ok_at"] = now
    TenantAlertWebhook.objects.filter(pk=hook.pk).update(**changes)
    if not ok:
        logger.warning("alert webhook %s of %s %s", mask_url(url), hook.company_id, result)
    return result


# --- delivery ---------------------------------------------------------------------------


@dataclass
class Message:
    subject: str
    text: str
    html: str
    slack: dict[str, Any] = field(default_factory=dict)


def _mail(*, recipients: list[User], message: Message) -> tuple[int, str]:
    """One message per person (nobody sees the others' addresses); (sent, error)."""
    if not recipients:
        return 0, ""
    mails = []
    for user in recipients:
        mail = EmailMultiAlternatives(message.subject, message.text, to=[user.email])
        mail.attach_alternative(message.html, "text/html")
        mails.append(mail)
    try:
        return get_connection(fail_silently=False).send_messages(mails) or 0, ""
    except Exception as exc:  # noqa: BLE001 - an SMTP failure is recorded, the pass goes on
        logger.warning("alert mail not sent (%s): %s", exc.__class__.__name__, exc)
        return 0, f"Mail not sent: {exc}"[:500]


def _deliver(
    *, row: AlertSent, company: Company, recipients: list[User], message: Message
) -> AlertSent:
    sent, error = _mail(recipients=recipients, message=message)
    hook = selectors.webhook_for(company=company)
    webhook_result = ""
    if hook is not None and hook.enabled and hook.url and message.slack:
        webhook_result = webhook_post(hook=hook, payload=message.slack)
    row.subject, row.recipients, row.error, row.webhook_result = (
        message.subject[:200],
        sent,
        error,
        webhook_result,
    )
    row.save(update_fields=["subject", "recipients", "error", "webhook_result"])
    return row


def _claim(**fields: Any) -> AlertSent | None:
    """Insert the row that says this alert is being sent; None when another pass has it."""
    try:
        with transaction.atomic():
            return AlertSent.objects.create(**fields)
    except IntegrityError:
        return None


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(text: str, lines: list[tuple[str, str]]) -> dict[str, Any]:
    """Slack-compatible JSON: `text` for clients and notifications, one mrkdwn section."""
    body = "\n".join(f"• <{url}|{_slack_escape(label)}>" for label, url in lines)
    section = f"*{_slack_escape(text)}*" + (f"\n{body}" if body else "")
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": section}}],
    }


# --- the daily digest -------------------------------------------------------------------


def digest_slot(now: datetime) -> date:
    """The day whose digest is due: today from ALERTS_DIGEST_HOUR (TIME_ZONE), else yesterday
    (a pass after a restart still sends a slot it missed)."""
    local = timezone.localtime(now)
    return (
        local.date()
        if local.hour >= settings.ALERTS_DIGEST_HOUR
        else local.date() - timedelta(days=1)
    )


def digest_message(
    *, company: Company, counts: list[selectors.ProblemCount], since: datetime, until: datetime
) -> Message:
    by_type: dict[str, dict[str, Any]] = {}
    for row in counts:
        rt = record_type(row.sync_type)
        entry = by_type.setdefault(
            row.sync_type,
            {
                "label": rt.tab_title,
                "count": 0,
                "url": tenant_link(company=company, path=problems_path(sync_type=row.sync_type)),
                "reasons": [],
            },
        )
        entry["count"] += row.count
        entry["reasons"].append(
            {
                "title": row.title,
                "count": row.count,
                "url": tenant_link(
                    company=company,
                    path=problems_path(sync_type=row.sync_type, reason=row.reason),
                ),
            }
        )
    total = sum(row.count for row in counts)
    context = {
        "company": company,
        "total": total,
        "types": list(by_type.values()),
        "since": since,
        "until": until,
        "problems_url": tenant_link(company=company, path=problems_path()),
        "settings_url": tenant_link(company=company, path=settings_path()),
    }
    subject = f"{company}: {total} new QuickBooks sync problem{'s' if total != 1 else ''}"
    lines = [
        (f"{r['title']} ({t['label'].lower()}): {r['count']}", r["url"])
        for t in by_type.values()
        for r in t["reasons"]
    ]
    return Message(
        subject=subject,
        text=render_to_string("alerts/email/digest.txt", context),
        html=render_to_string("alerts/email/digest.html", context),
        slack=_slack(subject, lines),
    )


def digest_send(
    *, company: Company, slot: str, now: datetime | None = None, dry_run: bool = False
) -> dict[str, Any] | None:
    """The digest of problems new since the tenant's last digest. A slot with nothing new is
    recorded (the next digest starts after it) and sends nothing. None: the slot was taken."""
    now = now or timezone.now()
    last = selectors.last_digest(company=company)
    since = last.covers_until if last and last.covers_until else now - FIRST_DIGEST_WINDOW
    counts = selectors.new_problems(company=company, since=since, until=now)
    total = sum(row.count for row in counts)
    recipients = selectors.recipients_for(company=company, kind="digest")
    summary: dict[str, Any] = {
        "company": company.name,
        "kind": "digest",
        "slot": slot,
        "problems": total,
        "by_type": {row.sync_type: 0 for row in counts},
        "recipients": [u.email for u in recipients],
    }
    for count in counts:
        summary["by_type"][count.sync_type] += count.count
    if dry_run:
        return summary
    row = _claim(
        company=company,
        kind=AlertSent.Kind.DIGEST,
        condition=slot,
        sent_at=now,
        covers_from=since,
        covers_until=now,
        problems=total,
    )
    if row is None:
        return None
    if total:
        message = digest_message(company=company, counts=counts, since=since, until=now)
        _deliver(row=row, company=company, recipients=recipients, message=message)
    summary["sent"] = row.recipients
    summary["webhook"] = row.webhook_result
    return summary


def digests_send_due(
    *,
    now: datetime | None = None,
    company_id: int | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Beat's digest pass: each tenant with someone to tell (a subscriber or a webhook) whose
    slot of today has not gone out. `force` (support's command) sends one now, off schedule."""
    now = now or timezone.now()
    slot = f"digest:{digest_slot(now):%Y-%m-%d}"
    if force:
        slot = f"digest:manual:{now:%Y-%m-%dT%H:%M:%S.%f}"
    companies = Company.objects.order_by("pk")
    if company_id is not None:
        companies = companies.filter(pk=company_id)
    listening = set(
        AlertSubscription.objects.filter(digest=True).values_list("company_id", flat=True)
    ) | set(
        TenantAlertWebhook.objects.filter(enabled=True)
        .exclude(url="")
        .values_list("company_id", flat=True)
    )
    done = set(
        AlertSent.objects.filter(kind=AlertSent.Kind.DIGEST, condition=slot).values_list(
            "company_id", flat=True
        )
    )
    results = []
    for company in companies.filter(pk__in=listening - done):
        try:
            result = digest_send(company=company, slot=slot, now=now, dry_run=dry_run)
        except Exception:  # noqa: BLE001 - one tenant's failure must not stop the others
            logger.exception("digest of %s failed", company)
            continue
        if result is not None:
            results.append(result)
    return results


# --- immediate alerts -------------------------------------------------------------------

TITLES = {
    "needs_reconnect": "QuickBooks needs reconnecting",
    "token_expiry": "QuickBooks authorization ending soon",
    "read_budget": "QuickBooks read budget at {percent}",
    "test": "Test alert",
}


def _title(condition: str) -> str:
    kind = condition.split(":", 1)[0]
    percent = f"{settings.QBO_COREPLUS_WARN_FRACTION:.0%}"
    return TITLES.get(kind, kind).format(percent=percent)


def immediate_message(*, company: Company, condition: str, detail: str) -> Message:
    title = _title(condition)
    action_url = tenant_link(company=company, path=connection_path())
    context = {
        "company": company,
        "title": title,
        "detail": detail,
        "action_url": action_url,
        "problems_url": tenant_link(company=company, path=problems_path()),
        "settings_url": tenant_link(company=company, path=settings_path()),
    }
    subject = f"{company}: {title}"
    return Message(
        subject=subject,
        text=render_to_string("alerts/email/immediate.txt", context),
        html=render_to_string("alerts/email/immediate.html", context),
        slack=_slack(f"{subject}. {detail}", [("Open the QuickBooks connection", action_url)]),
    )


def immediate_check(
    *, now: datetime | None = None, company_id: int | None = None, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Beat's minute pass: each condition that began since the last pass is told once; one that
    went away is closed, so it is told again if it comes back. A few queries for every tenant."""
    now = now or timezone.now()
    connections = selectors.connections_by_company(
        company_ids=None if company_id is None else [company_id]
    )
    reads = selectors.workspace_reads(at=now)
    open_rows: dict[tuple[int, str], AlertSent] = {
        (row.company_id, row.condition): row
        for row in AlertSent.objects.filter(
            kind=AlertSent.Kind.IMMEDIATE, cleared_at__isnull=True
        ).filter(**({} if company_id is None else {"company_id": company_id}))
    }
    active: dict[tuple[int, str], tuple[QuickBooksConnection, str]] = {}
    for cid, connection in connections.items():
        for condition, detail in selectors.conditions_for(
            connection=connection, reads=reads, at=now
        ).items():
            active[(cid, condition)] = (connection, detail)
    results: list[dict[str, Any]] = []
    gone = [row.pk for key, row in open_rows.items() if key not in active]
    if gone and not dry_run:
        AlertSent.objects.filter(pk__in=gone).update(cleared_at=now)
    for (cid, condition), (connection, detail) in active.items():
        if (cid, condition) in open_rows:
            continue
        try:
            result = _immediate_send(
                company=connection.company,
                condition=condition,
                detail=detail,
                now=now,
                dry_run=dry_run,
            )
        except Exception:  # noqa: BLE001 - one tenant's failure must not stop the others
            logger.exception("immediate alert %s of company %s failed", condition, cid)
            continue
        if result is not None:
            results.append(result)
    return results


def _immediate_send(
    *, company: Company, condition: str, detail: str, now: datetime, dry_run: bool
) -> dict[str, Any] | None:
    recipients = selectors.recipients_for(company=company, kind="immediate")
    summary: dict[str, Any] = {
        "company": company.name,
        "kind": "immediate",
        "condition": condition,
        "recipients": [u.email for u in recipients],
    }
    if dry_run:
        return summary
    row = _claim(company=company, kind=AlertSent.Kind.IMMEDIATE, condition=condition, sent_at=now)
    if row is None:
        return None  # another pass is telling it
    message = immediate_message(company=company, condition=condition, detail=detail)
    _deliver(row=row, company=company, recipients=recipients, message=message)
    summary["sent"], summary["webhook"] = row.recipients, row.webhook_result
    return summary


# --- a test alert -----------------------------------------------------------------------


def test_alert_send(*, company: Company, user: User) -> AlertSent:
    """What the settings card's "Send a test alert" does: to the tenant's webhook and to the
    person asking (not to every subscriber)."""
    if not selectors.is_member(user, company) and not user.is_staff:
        raise PermissionDenied(f"You are not a member of {company}.")
    now = timezone.now()
    title = "Test alert"
    detail = f"{user.get_username()} sent this test from Finance → QuickBooks → Alerts."
    message = immediate_message(company=company, condition="test", detail=detail)
    message.subject = f"{company}: {title}"
    message.slack = _slack(
        f"{company}: test alert from PortPro QuickBooks. {detail}",
        [("Alert settings", tenant_link(company=company, path=settings_path()))],
    )
    row = AlertSent.objects.create(
        company=company, kind=AlertSent.Kind.TEST, condition=f"test:{now.isoformat()}", sent_at=now
    )
    return _deliver(
        row=row, company=company, recipients=[user] if user.email else [], message=message
    )
