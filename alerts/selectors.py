"""Read queries for alerts: who receives them, what is new, which conditions hold now.

Every query here is cheap (no QuickBooks call: reads are metered by Intuit, alerts spend none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, QuerySet, Sum

from alerts.models import AlertSent, AlertSubscription, TenantAlertWebhook
from finance.models import Company, Membership
from finance.registry import RECORD_TYPES
from finance.syncstate import SyncStatus
from sync.models import ApiUsage, QuickBooksConnection
from sync.problems import reason_for
from sync.selectors import authorization_end_for
from sync.services.usage import month_start

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User


def is_member(user: AbstractBaseUser | AnonymousUser, company: Company) -> bool:
    """A member of the tenant. As in finance.tenancy, a deployment of one tenant whose users have
    no memberships yet lets them work there; staff serving every tenant are not members."""
    pk = getattr(user, "pk", None)
    if pk is None or not getattr(user, "is_active", False):
        return False
    if Membership.objects.filter(user_id=pk, company=company).exists():
        return True
    return not Membership.objects.filter(user_id=pk).exists() and Company.objects.count() == 1


def subscription_for(*, user: User, company: Company) -> AlertSubscription | None:
    return AlertSubscription.objects.filter(user=user, company=company).first()


def recipients_for(*, company: Company, kind: str) -> list[User]:
    """Members subscribed to `kind` ("digest" or "immediate") with an e-mail address, checked
    again at send time: a member who left the tenant stops receiving its alerts."""
    subscriptions = (
        AlertSubscription.objects.filter(company=company, **{kind: True})
        .exclude(user__email="")
        .filter(user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    )
    return [s.user for s in subscriptions if is_member(s.user, company)]


def webhook_for(*, company: Company) -> TenantAlertWebhook | None:
    return TenantAlertWebhook.objects.filter(company=company).first()


def recent_alerts(*, company: Company, limit: int = 5) -> QuerySet[AlertSent]:
    return AlertSent.objects.filter(company=company).exclude(recipients=0, webhook_result="")[
        :limit
    ]


def last_digest(*, company: Company) -> AlertSent | None:
    return (
        AlertSent.objects.filter(company=company, kind=AlertSent.Kind.DIGEST)
        .exclude(covers_until__isnull=True)
        .order_by("-covers_until", "-id")
        .first()
    )


@dataclass(frozen=True)
class ProblemCount:
    sync_type: str
    reason: str  # the code; `title` is the words
    title: str
    count: int


def new_problems(*, company: Company, since: datetime, until: datetime) -> list[ProblemCount]:
    """Records of every type now in PROBLEM whose problem began in (since, until], counted per
    type and reason (tab order, then the biggest reason first). Any reason counts, also ones
    this module never heard of: a new reason shows with its own title."""
    rows: list[ProblemCount] = []
    for rt in sorted(RECORD_TYPES.values(), key=lambda r: r.tab_position):
        counts = (
            rt.model.objects.filter(
                company=company,
                sync_status=SyncStatus.PROBLEM,
                problem_since__gt=since,
                problem_since__lte=until,
            )
            .values("problem_reason")
            .annotate(n=Count("pk"))
            .order_by("-n", "problem_reason")
        )
        for row in counts:
            code = row["problem_reason"]
            rows.append(ProblemCount(rt.name, code, reason_for(code).title, row["n"]))
    return rows


def connections_by_company(
    *, company_ids: list[int] | None = None
) -> dict[int, QuickBooksConnection]:
    """Tenants that have been connected to a QuickBooks company (a realm)."""
    qs = QuickBooksConnection.objects.exclude(realm_id="")
    if company_ids is not None:
        qs = qs.filter(company_id__in=company_ids)
    return {c.company_id: c for c in qs}


def workspace_reads(*, at: datetime) -> int:
    """CorePlus reads of every tenant this UTC month (one aggregate)."""
    total = ApiUsage.objects.filter(month=month_start(at)).aggregate(n=Sum("coreplus"))["n"]
    return int(total or 0)


def conditions_for(
    *, connection: QuickBooksConnection | None, reads: int, at: datetime
) -> dict[str, str]:
    """The immediate-alert conditions that hold for a tenant now: condition key → what to say.

    The read budget is the developer workspace's (one allowance shared by every tenant), so every
    connected tenant hears of it, once a month (the key holds the month)."""
    if connection is None:
        return {}
    found: dict[str, str] = {}
    if connection.status == QuickBooksConnection.Status.NEEDS_RECONNECT:
        found["needs_reconnect"] = (
            "QuickBooks needs reconnecting: Intuit no longer accepts this connection's "
            "authorization. Records wait (nothing is lost) until someone with the Finance role "
            "reconnects."
        )
    end = authorization_end_for(connection=connection)
    if end is not None and end.warn:
        when = "has ended" if end.ended else f"ends in {end.days_left} day(s)"
        found["token_expiry"] = (
            f"The QuickBooks authorization {when} ({end.at:%Y-%m-%d}). Reconnect QuickBooks to "
            "renew it before records stop syncing."
        )
    allowance = settings.QBO_COREPLUS_ALLOWANCE
    if (
        connection.status == QuickBooksConnection.Status.CONNECTED
        and allowance
        and reads / allowance >= settings.QBO_COREPLUS_WARN_FRACTION
    ):
        found[f"read_budget:{month_start(at):%Y-%m}"] = (
            f"QuickBooks reads this month are at {reads / allowance:.0%} of the workspace "
            f"allowance ({reads:,} of {allowance:,}). When it is spent Intuit refuses reads: "
            "changes made in QuickBooks stop coming in until next month (pushes go on)."
        )
    return found
