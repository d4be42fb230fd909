"""Read queries for sync pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils import timezone

from finance.models import Company, SyncedRecord
from finance.registry import RECORD_TYPES, record_type
from finance.syncstate import SyncStatus
from finance.tenancy import companies_for
from sync.models import ProblemEvent, QuickBooksConnection, SyncAttempt

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def connection_for_company(*, company: Company) -> QuickBooksConnection:
    connection, _ = QuickBooksConnection.objects.get_or_create(company=company)
    return connection


def company_for_realm(*, user: AbstractBaseUser | AnonymousUser, realm_id: str) -> Company | None:
    """The tenant, among those this user works in, connected to this QuickBooks company."""
    return (
        companies_for(user)
        .filter(quickbooks_connection__realm_id=realm_id)
        .exclude(quickbooks_connection__realm_id="")
        .first()
    )


@dataclass(frozen=True)
class AuthorizationEnd:
    """When a tenant's QuickBooks authorization ends: Intuit's hard expiry (`hard_at`, at most
    5 years from consent: only a new consent renews it) or the rolling refresh-token expiry
    (~100 days: every refresh renews it, so it comes near only for a connection long unused),
    whichever is first (`at`)."""

    at: datetime
    hard_at: datetime | None
    warn: bool  # connected, and `at` within QBO_TOKEN_EXPIRY_WARNING_DAYS

    @property
    def hard(self) -> bool:
        """The hard expiry is what ends it (reconnecting is the only way on)."""
        return self.at == self.hard_at

    @property
    def ended(self) -> bool:
        return self.at <= timezone.now()

    @property
    def hard_ended(self) -> bool:
        return self.hard_at is not None and self.hard_at <= timezone.now()

    @property
    def days_left(self) -> int:
        """Whole days, rounded up: hours left read as 1 day, never as 0 while not ended."""
        return max(0, math.ceil((self.at - timezone.now()) / timedelta(days=1)))


def authorization_end_for(*, connection: QuickBooksConnection) -> AuthorizationEnd | None:
    """None while no expiry is known. Only a connected tenant is warned: any other status
    already asks for a reconnect."""
    rolling, hard = connection.refresh_token_expires_at, connection.refresh_token_hard_expires_at
    ends = [moment for moment in (rolling, hard) if moment is not None]
    if not ends:
        return None
    at = min(ends)
    window = timedelta(days=settings.QBO_TOKEN_EXPIRY_WARNING_DAYS)
    connected = connection.status == QuickBooksConnection.Status.CONNECTED
    return AuthorizationEnd(at=at, hard_at=hard, warn=connected and at - timezone.now() <= window)


def connection_banner_for(*, company: Company) -> dict[str, Any] | None:
    """The banner of a tenant whose QuickBooks needs attention: not connected (reconnect), or
    connected with its authorization ending within the warning window (`expiring`)."""
    connection = QuickBooksConnection.objects.filter(company=company).exclude(realm_id="").first()
    if connection is None:
        return None
    if connection.status == QuickBooksConnection.Status.CONNECTED:
        end = authorization_end_for(connection=connection)
        if end is None or not end.warn:
            return None
        return {"connection": connection, "expiring": end}
    remaining = None
    if connection.refresh_token_expires_at:
        remaining = connection.refresh_token_expires_at - timezone.now()
    return {"connection": connection, "refresh_remaining": remaining}


# --- Problem Sync and Waiting pages ----------------------------------------------------

PROBLEM_TABS = [
    (rt.name, rt.tab_title) for rt in sorted(RECORD_TYPES.values(), key=lambda r: r.tab_position)
]
WAITING_STATUSES = ("pending", "retry_wait", "in_flight")
# Skipped: a draft, a type switched off, an unmapped charge code. Listed, with a way to send.
NOT_SYNCING = ("skipped",)
# Off the problem list by a person's choice (cleared, paid outside): listed, with undo.
RESOLVED = ("cleared", "paid_outside")
# Sort keys the page offers → ORM fields ("doc", "amount", "customer" come from the type).
SORTS = {
    "since": "problem_since",
    "age": "created_at",
    "attempts": "attempts",
    "last_try": "last_attempt_at",
    "next_retry": "next_retry_at",
    "status": "sync_status",
}


def _base(sync_type: str, company: Company) -> QuerySet[Any]:
    rt = record_type(sync_type)
    qs = rt.model.objects.filter(company=company)
    return qs.select_related(rt.party_field) if rt.party_field else qs


def problem_counts(*, company: Company) -> dict[str, int]:
    """Problems per record type, for the tab labels."""
    from django.db.models import Count

    return {
        sync_type: record_type(sync_type)
        .model.objects.filter(company=company, sync_status="problem")
        .aggregate(n=Count("pk"))["n"]
        for sync_type, _ in PROBLEM_TABS
    }


def _search(qs: QuerySet[Any], sync_type: str, search: str) -> QuerySet[Any]:
    """Any of the type's search fields contains the text. A path through a to-many relation
    (an invoice's containers, a payment's invoices) is a subquery on the related table: no
    duplicated rows, and the same plan as a hand-written one."""
    from django.db.models import Q

    text = search.strip()
    if not text:
        return qs
    model = qs.model
    condition = Q()
    for path in record_type(sync_type).search_fields:
        first, _, rest = path.partition("__")
        relation = model._meta.get_field(first)
        if rest and (relation.one_to_many or relation.many_to_many):
            related = relation.related_model.objects.filter(**{f"{rest}__icontains": text})
            condition |= Q(pk__in=related.values(relation.field.attname))
        else:
            condition |= Q(**{f"{path}__icontains": text})
    return qs.filter(condition)


def _sort_field(sync_type: str, key: str) -> str | None:
    rt = record_type(sync_type)
    if key == "doc":
        return rt.label_fields[0]
    if key == "amount":
        return rt.amount_field or None
    if key == "customer":
        return f"{rt.party_field}__display_name" if rt.party_field else None
    return SORTS.get(key)


def _order(qs: QuerySet[Any], sync_type: str, sort: str, default: str) -> QuerySet[Any]:
    desc = sort.startswith("-")
    field = _sort_field(sync_type, sort.lstrip("-"))
    if not field:
        return qs.order_by(default, "-pk")
    from django.db.models import F

    if field == "problem_since":
        # Exactly the index's order (finance sync_indexes): a problem always has a date, so
        # NULL placement changes nothing, and a NULLS clause would stop the index being used.
        return qs.order_by(F(field).desc() if desc else F(field).asc(), "-pk")
    expr = F(field).desc(nulls_last=True) if desc else F(field).asc(nulls_last=True)
    return qs.order_by(expr, "-pk")


class KeysFirstPaginator(Paginator):
    """Finds a page's primary keys first, then loads those rows with their joins: a deep page
    (offset 60,000) walks one index instead of joining every row before it. Same rows, same
    order, same number of queries."""

    object_list: QuerySet[Any]  # it pages querysets only

    def page(self, number: int | str) -> Page[Any]:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = self.object_list.values("pk")[bottom:top]
        # django-stubs lacks _get_page, the hook Django's own page() builds its Page with.
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)  # type: ignore[attr-defined]


def problems_list(
    *,
    company: Company,
    sync_type: str,
    search: str = "",
    reason: str = "",
    age: str = "",
    sort: str = "-since",
) -> QuerySet[Any]:
    """PROBLEM records of one type, filtered and sorted as the page asks."""
    from datetime import timedelta

    qs = _base(sync_type, company).filter(sync_status="problem")
    qs = _search(qs, sync_type, search)
    if reason:
        qs = qs.filter(problem_reason=reason)
    days = {"1d": 1, "7d": 7}.get(age)
    if days:
        qs = qs.filter(problem_since__lte=timezone.now() - timedelta(days=days))
    return _order(qs, sync_type, sort, "-problem_since")


def waiting_counts(
    *, company: Company, statuses: tuple[str, ...] = WAITING_STATUSES
) -> dict[str, int]:
    from django.db.models import Count

    return {
        sync_type: record_type(sync_type)
        .model.objects.filter(company=company, sync_status__in=statuses)
        .aggregate(n=Count("pk"))["n"]
        for sync_type, _ in PROBLEM_TABS
    }


def waiting_list(
    *,
    company: Company,
    sync_type: str,
    sort: str = "age",
    statuses: tuple[str, ...] = WAITING_STATUSES,
) -> QuerySet[Any]:
    """Everything still owed to QuickBooks (pending, waiting to retry, in flight), or with
    NOT_SYNCING the records nothing will send until something changes."""
    qs = _base(sync_type, company).filter(sync_status__in=statuses)
    return _order(qs, sync_type, sort, "created_at")


def attempt_history(*, record: SyncedRecord, limit: int = 20) -> QuerySet[SyncAttempt]:
    return SyncAttempt.objects.filter(record_type=record.sync_type, record_id=record.pk).order_by(
        "-started_at", "-id"
    )[:limit]


def recently_resolved(*, company: Company, limit: int = 10, days: int = 7) -> list[ProblemEvent]:
    """Problems resolved lately, newest first, each with its record (bulk-loaded per type)."""
    from datetime import timedelta

    events = list(
        ProblemEvent.objects.filter(
            company=company,
            kind=ProblemEvent.Kind.RESOLVED,
            at__gte=timezone.now() - timedelta(days=days),
        )
        .select_related("user")
        .order_by("-at", "-id")[: limit * 3]
    )
    wanted: dict[str, set[int]] = {}
    for event in events:
        wanted.setdefault(event.record_type, set()).add(event.record_id)
    records: dict[tuple[str, int], SyncedRecord] = {}
    for sync_type, ids in wanted.items():
        for record in _base(sync_type, company).filter(pk__in=ids):
            records[(sync_type, record.pk)] = record
    rows: list[ProblemEvent] = []
    seen: set[tuple[str, int]] = set()
    for event in events:
        key = (event.record_type, event.record_id)
        if key in seen or key not in records:
            continue
        seen.add(key)
        if records[key].sync_status == SyncStatus.PROBLEM:
            continue  # a problem again (a clear undone, a new failure): not resolved
        event.record = records[key]
        rows.append(event)
    return rows[:limit]


def trend(*, company: Company, days: int = 14) -> list[dict[str, Any]]:
    """This company's problems opened and resolved per day (oldest first), per type too."""
    from datetime import datetime, timedelta

    from django.db.models import Count
    from django.db.models.functions import TruncDate

    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    rows = (
        ProblemEvent.objects.filter(company=company, at__gte=since)
        .annotate(day=TruncDate("at"))
        .values("day", "kind", "record_type")
        .annotate(n=Count("id"))
    )
    series: dict[date, dict[str, Any]] = {
        start + timedelta(days=i): {"opened": 0, "resolved": 0, "by_type": {}} for i in range(days)
    }
    for row in rows:
        day = series.get(row["day"])
        if day is None:
            continue
        day[row["kind"]] = day.get(row["kind"], 0) + row["n"]
        per_type = day["by_type"].setdefault(row["record_type"], {"opened": 0, "resolved": 0})
        per_type[row["kind"]] = per_type.get(row["kind"], 0) + row["n"]
    return [{"day": d} | values for d, values in series.items()]
