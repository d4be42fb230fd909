"""TMS ↔ QuickBooks reconciliation: every invoice, credit memo, payment and bill of a period
beside QuickBooks' copy, differences first, with the open receivables and payables of each side.

Reads are metered (CorePlus), so QuickBooks is read into our own copies (`QuickBooksDocument`)
once, by a query by date paged 1,000 at a time, and kept current after that by one change data
capture call (deletions included) per refresh; a copy is rewritten only when its SyncToken moved.
The report itself reads our tables only. The nightly run (beat, `reconcile_due`) refreshes the
copies, keeps a snapshot (`ReconciliationRun`) and turns differences it had not seen the night
before into Problem Sync rows, each kind with its own reason (sync/problems.py).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from finance.models import Bill, Company, CreditMemo, Invoice, Payment, SyncedRecord
from finance.registry import RECORD_TYPES
from finance.services import finance_settings_get
from finance.syncstate import OWED, SyncStatus
from sync.models import (
    QuickBooksConnection,
    QuickBooksDocument,
    ReconciliationAcknowledgement,
    ReconciliationRun,
    ReconciliationState,
)
from sync.services import usage
from sync.services.client import NeedsReconnect, QboError, QboObject, QuickBooksSession, session_for
from sync.services.drift import Drift, deleted, drift_since_last_write, voided
from sync.services.pull import changes_since
from sync.services.pull_apply import flag

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

PAGE = 1000  # QuickBooks answers at most 1,000 rows per query
CDC_REACH = timedelta(days=29)  # QuickBooks' change data capture looks back 30 days at most
CENT = Decimal("0.005")


@dataclass(frozen=True)
class Side:
    """One reconciled record type: how its TMS records and QuickBooks' copies line up."""

    sync_type: str
    entity: str
    date_field: str
    number_field: str
    party_ref: str  # "CustomerRef" or "VendorRef"
    balance_key: str  # what QuickBooks says is still open: Balance, RemainingCredit, UnappliedAmt
    applied: str = ""  # the relation whose amounts the TMS has applied (payments to an invoice)


SIDES = (
    Side(
        "invoice", "Invoice", "invoice_date", "doc_number", "CustomerRef", "Balance", "applications"
    ),
    Side("creditmemo", "CreditMemo", "memo_date", "number", "CustomerRef", "RemainingCredit"),
    Side(
        "payment",
        "Payment",
        "payment_date",
        "reference_number",
        "CustomerRef",
        "UnappliedAmt",
        "applications",
    ),
    Side("bill", "Bill", "bill_date", "doc_number", "VendorRef", "Balance", "payments_applied"),
)
SIDE_OF = {side.sync_type: side for side in SIDES}
ENTITIES = [side.entity for side in SIDES]

# Each kind of difference, worst first, in a clerk's words; and the Problem Sync reason a new
# one becomes when the TMS record believes QuickBooks agrees (it is synced).
KINDS: dict[str, str] = {
    "missing_in_quickbooks": "Missing in QuickBooks",
    "only_in_quickbooks": "In QuickBooks, not in the TMS",
    "deleted_in_quickbooks": "Deleted in QuickBooks",
    "voided_in_quickbooks": "Voided in QuickBooks only",
    "voided_in_tms": "Voided in the TMS only",
    "amount_differs": "Amount differs",
    "paid_differs": "Paid amount differs",
}
PROBLEM_REASON = {
    "missing_in_quickbooks": "reconcile_missing",
    "deleted_in_quickbooks": "reconcile_deleted",
    "voided_in_quickbooks": "reconcile_voided",
    "voided_in_tms": "reconcile_void_not_sent",
    "amount_differs": "reconcile_amount_differs",
    "paid_differs": "reconcile_paid_differs",
}
# The TMS believes QuickBooks holds these as they are: a difference is news to someone.
BELIEVED_SYNCED = (SyncStatus.SYNCED, SyncStatus.PAID_OUTSIDE)


# --- our copies of QuickBooks' documents ---------------------------------------------------


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.01"))
    except ArithmeticError:
        return Decimal("0.00")


def _copy_fields(entity: str, obj: QboObject) -> dict[str, Any]:
    side = next(s for s in SIDES if s.entity == entity)
    ref = obj.get(side.party_ref) or {}
    number = obj.get("PaymentRefNum") if entity == "Payment" else obj.get("DocNumber")
    try:
        txn_date = date.fromisoformat(str(obj.get("TxnDate", ""))[:10])
    except ValueError:
        txn_date = None
    balance = obj.get(side.balance_key)
    if balance is None and side.balance_key == "RemainingCredit":
        balance = obj.get("Balance")
    total = _money(obj.get("TotalAmt"))
    # A bill cannot be voided through the API: ours are voided by zeroing every line.
    is_void = voided(obj) or (entity == "Bill" and total == 0 and bool(obj.get("Line")))
    return {
        "sync_token": str(obj.get("SyncToken", ""))[:16],
        "doc_number": str(number or "")[:40],
        "txn_date": txn_date,
        "party_id": str(ref.get("value", ""))[:32],
        "party_name": str(ref.get("name", ""))[:200],
        "total": total,
        "balance": None if balance is None else _money(balance),
        "voided": is_void,
        "deleted": False,
        "data": obj,
    }


def _store(company: Company, entity: str, objs: Iterable[QboObject], now: datetime) -> int:
    """Our copies take QuickBooks' answer: new ones inserted, those whose SyncToken moved (or
    that were deleted) rewritten, the rest left alone. Returns how many changed."""
    by_id = {str(o.get("Id", "")): o for o in objs if str(o.get("Id", "")).isdigit()}
    if not by_id:
        return 0
    held = {
        qb_id: (pk, token, was_deleted)
        for pk, qb_id, token, was_deleted in QuickBooksDocument.objects.filter(
            company=company, entity=entity, qb_id__in=list(by_id)
        ).values_list("pk", "qb_id", "sync_token", "deleted")
    }
    new, changed = [], 0
    for qb_id, obj in by_id.items():
        if deleted(obj):
            if qb_id in held and not held[qb_id][2]:
                QuickBooksDocument.objects.filter(pk=held[qb_id][0]).update(
                    deleted=True, read_at=now
                )
                changed += 1
            continue
        fields = _copy_fields(entity, obj)
        if qb_id not in held:
            new.append(
                QuickBooksDocument(
                    company=company, entity=entity, qb_id=qb_id, read_at=now, **fields
                )
            )
        elif held[qb_id][1] != fields["sync_token"] or held[qb_id][2]:
            QuickBooksDocument.objects.filter(pk=held[qb_id][0]).update(read_at=now, **fields)
            changed += 1
    QuickBooksDocument.objects.bulk_create(new, ignore_conflicts=True)
    return changed + len(new)


def _query_dated(
    session: QuickBooksSession,
    company: Company,
    entity: str,
    since: date,
    before: date | None,
    now: datetime,
) -> set[str]:
    """Every `entity` dated from `since` (and before `before`), 1,000 a call. Returns their Ids."""
    condition = f"TxnDate >= '{since.isoformat()}'"
    if before is not None:
        condition += f" AND TxnDate < '{before.isoformat()}'"
    seen: set[str] = set()
    for page in range(10_000):
        rows = session.query(
            f"SELECT * FROM {entity} WHERE {condition} ORDERBY Id"
            f" STARTPOSITION {page * PAGE + 1} MAXRESULTS {PAGE}"
        )
        _store(company, entity, rows, now)
        seen.update(str(row.get("Id", "")) for row in rows)
        if len(rows) < PAGE:
            break
    return seen


def refresh_copies(*, company: Company, since: date) -> int:
    """Bring our copies of the company's documents dated from `since` up to date, as cheaply as
    QuickBooks allows; returns the reads it spent. Raises NeedsReconnect or QboError."""
    connection = QuickBooksConnection.objects.filter(company=company).first()
    if connection is None:
        raise NeedsReconnect("QuickBooks is not connected")
    session = session_for(connection)
    started = timezone.now()
    state, _ = ReconciliationState.objects.get_or_create(company=company)
    fresh = (
        state.realm_id == session.realm
        and state.refreshed_at is not None
        and state.covered_from is not None
        and started - state.refreshed_at < CDC_REACH
    )
    try:
        with usage.purpose("reconcile"):
            if not fresh:
                # A first read, another QuickBooks company, or copies too old for change data
                # capture: read what is dated from `since` again; what QuickBooks no longer has
                # was deleted there.
                if state.realm_id != session.realm:
                    QuickBooksDocument.objects.filter(company=company).delete()
                for entity in ENTITIES:
                    seen = _query_dated(session, company, entity, since, None, started)
                    QuickBooksDocument.objects.filter(
                        company=company, entity=entity, txn_date__gte=since, deleted=False
                    ).exclude(qb_id__in=seen).update(deleted=True, read_at=started)
                covered_from = since
            else:
                assert state.covered_from is not None and state.refreshed_at is not None
                if since < state.covered_from:  # an earlier period than ever read
                    for entity in ENTITIES:
                        _query_dated(session, company, entity, since, state.covered_from, started)
                covered_from = min(since, state.covered_from)
                # Our clock and Intuit's are not the same clock: overlap a little.
                changes = changes_since(
                    session, state.refreshed_at - timedelta(seconds=60), ENTITIES
                )
                for entity, objs in changes.items():
                    _store(company, entity, objs, started)
    except (QboError, NeedsReconnect) as exc:
        ReconciliationState.objects.filter(pk=state.pk).update(last_error=str(exc)[:500])
        raise
    ReconciliationState.objects.filter(pk=state.pk).update(
        realm_id=session.realm, covered_from=covered_from, refreshed_at=started, last_error=""
    )
    return session.reads


# --- the report ------------------------------------------------------------------------------


@dataclass
class Line:
    """One document on both sides; `kind` is "" when they agree."""

    sync_type: str
    number: str
    party: str
    txn_date: date | None
    kind: str = ""
    record_id: int | None = None
    qb_id: str = ""
    tms_amount: Decimal | None = None
    qb_amount: Decimal | None = None
    tms_balance: Decimal | None = None
    qb_balance: Decimal | None = None
    tms_status: str = ""
    qb_status: str = ""
    sync_state: str = ""
    note: str = ""
    acknowledged: str = ""  # who accepted the difference, and why ("" while it is open)

    @property
    def key(self) -> str:
        """The same difference on another night has the same key."""
        who = f"r{self.record_id}" if self.record_id is not None else f"q{self.qb_id}"
        return f"{self.kind}:{self.sync_type}:{who}"

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, "Agrees")

    @property
    def on_its_way(self) -> bool:
        return self.sync_state in OWED

    @property
    def type_label(self) -> str:
        return RECORD_TYPES[self.sync_type].singular

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.key
        for name, value in data.items():
            if isinstance(value, Decimal | date):
                data[name] = str(value)
        return data


@dataclass
class Report:
    company: Company
    start: date
    end: date
    party: str
    lines: list[Line]
    as_of: datetime | None
    covered: bool  # our copies reach back to `start`
    types_off: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[Line]:
        """The open ones: a difference a person acknowledged is listed apart."""
        return [line for line in self.lines if line.kind and not line.acknowledged]

    @property
    def acknowledged(self) -> list[Line]:
        return [line for line in self.lines if line.kind and line.acknowledged]

    @property
    def agreeing(self) -> list[Line]:
        return [line for line in self.lines if not line.kind]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for line in self.differences:
            counts[line.kind] += 1
        return counts

    def totals(self) -> dict[str, dict[str, str]]:
        """Open receivables (invoices less unapplied credits and payments) and payables (bills)
        as each side holds them, and what was billed, credited, received and owed in the
        period."""
        sums: dict[str, list[Decimal]] = {}

        def add(name: str, tms: Decimal | None, qb: Decimal | None) -> None:
            both = sums.setdefault(name, [Decimal(0), Decimal(0)])
            both[0] += tms or 0
            both[1] += qb or 0

        for line in self.lines:
            amounts = {
                "invoice": "invoiced",
                "creditmemo": "credited",
                "payment": "received",
                "bill": "billed_by_vendors",
            }
            add(amounts[line.sync_type], line.tms_amount, line.qb_amount)
            if line.sync_type == "invoice":
                add("open_invoices", line.tms_balance, line.qb_balance)
            elif line.sync_type == "bill":
                add("open_payables", line.tms_balance, line.qb_balance)
            else:  # unapplied credits and payments lower what customers owe
                add("unapplied_credits", line.tms_balance, line.qb_balance)
        open_invoices = sums.get("open_invoices", [Decimal(0), Decimal(0)])
        unapplied = sums.get("unapplied_credits", [Decimal(0), Decimal(0)])
        sums["open_receivables"] = [
            open_invoices[0] - unapplied[0],
            open_invoices[1] - unapplied[1],
        ]
        return {
            name: {
                "tms": f"{tms:.2f}",
                "quickbooks": f"{qb:.2f}",
                "differs": str(abs(tms - qb) >= CENT),
            }
            for name, (tms, qb) in sums.items()
        }


TOTAL_LABELS = {
    "invoiced": "Invoiced",
    "credited": "Credit memos",
    "received": "Payments received",
    "open_invoices": "Open invoice balances",
    "unapplied_credits": "Unapplied credits and payments",
    "open_receivables": "Open receivables",
    "billed_by_vendors": "Vendor bills",
    "open_payables": "Open payables",
}


def _tms_status(record: SyncedRecord) -> str:
    status = getattr(record, "status", "")
    return record.get_status_display() if status else "Recorded"  # type: ignore[attr-defined]


def _qb_status(copy: QuickBooksDocument) -> str:
    if copy.deleted:
        return "Deleted"
    if copy.voided:
        return "Voided"
    if copy.entity in ("Invoice", "Bill") and copy.balance is not None:
        if copy.balance <= 0:
            return "Paid"
        return "Partly paid" if copy.balance < copy.total else "Open"
    return "Recorded"


def _tms_balance(record: SyncedRecord) -> Decimal | None:
    """What the TMS's own books leave open: an invoice's total less the payments applied to it
    (credit memos are counted apart, as QuickBooks keeps them unapplied), a bill's less its bill
    payments, a credit memo's whole amount, a payment's unapplied part."""
    paid_elsewhere = record.sync_status == SyncStatus.PAID_OUTSIDE
    # `_records` summed what is applied in the same query (no query per document).
    applied = getattr(record, "applied_sum", None) or Decimal(0)
    if isinstance(record, Invoice | Bill):
        if paid_elsewhere or record.status == "void":
            return Decimal("0.00")
        return max(Decimal(0), record.total - applied)
    if isinstance(record, CreditMemo):
        return record.total
    if isinstance(record, Payment):
        return record.amount - applied
    return None


def _is_void(record: SyncedRecord) -> bool:
    return getattr(record, "status", "") == "void"


def _compare(record: SyncedRecord, copy: QuickBooksDocument | None, line: Line) -> str:
    amount_field = RECORD_TYPES[record.sync_type].amount_field
    line.tms_amount = getattr(record, amount_field)
    line.tms_balance = _tms_balance(record)
    if not record.qb_id:
        line.note = "Not sent to QuickBooks yet"
        return "missing_in_quickbooks"
    if copy is None:
        line.note = f"QuickBooks has no {SIDE_OF[record.sync_type].entity} {record.qb_id}"
        return "missing_in_quickbooks"
    line.qb_amount, line.qb_balance, line.qb_status = copy.total, copy.balance, _qb_status(copy)
    if copy.deleted:
        return "deleted_in_quickbooks"
    if copy.voided != _is_void(record):
        return "voided_in_quickbooks" if copy.voided else "voided_in_tms"
    if copy.voided:
        line.qb_balance = line.tms_balance
        return ""
    if abs(line.tms_amount - copy.total) >= CENT:
        return "amount_differs"
    if (
        record.sync_type in ("invoice", "bill")
        and copy.balance is not None
        and line.tms_balance is not None
        and abs(line.tms_balance - copy.balance) >= CENT
    ):
        return "paid_differs"
    return ""


def _records(
    company: Company, side: Side, start: date, end: date, party: str
) -> list[SyncedRecord]:
    rt = RECORD_TYPES[side.sync_type]
    qs = rt.model.objects.filter(
        company=company, **{f"{side.date_field}__gte": start, f"{side.date_field}__lte": end}
    ).select_related(rt.party_field)
    if side.applied:
        qs = qs.annotate(applied_sum=Sum(f"{side.applied}__amount"))
    if hasattr(rt.model, "status"):
        # Drafts are not meant for QuickBooks; a void never sent has nothing to agree with.
        qs = qs.exclude(status="draft").exclude(status="void", qb_id="")
    if party:
        qs = qs.filter(**{f"{rt.party_field}__display_name__icontains": party})
    return list(qs.order_by(side.date_field, "pk"))


def report(*, company: Company, start: date, end: date, party: str = "") -> Report:
    """Both sides for the period, from our tables (no QuickBooks call): differences first."""
    fs = finance_settings_get(company=company)
    state = ReconciliationState.objects.filter(company=company).first()
    lines: list[Line] = []
    types_off = []
    for side in SIDES:
        rt = RECORD_TYPES[side.sync_type]
        if rt.settings_toggle and not getattr(fs, rt.settings_toggle):
            types_off.append(rt.tab_title)
            continue
        records = _records(company, side, start, end, party)
        dated = QuickBooksDocument.objects.filter(
            company=company, entity=side.entity, txn_date__gte=start, txn_date__lte=end
        )
        if party:
            dated = dated.filter(party_name__icontains=party)
        ours = {r.qb_id for r in records if r.qb_id}
        copies = {
            c.qb_id: c
            for c in QuickBooksDocument.objects.filter(company=company, entity=side.entity).filter(
                Q(qb_id__in=ours) | Q(pk__in=dated.values("pk"))
            )
        }
        for record in records:
            party_obj = getattr(record, rt.party_field)
            copy = copies.get(record.qb_id) if record.qb_id else None
            line = Line(
                sync_type=side.sync_type,
                number=str(getattr(record, side.number_field) or "") or f"#{record.pk}",
                party=party_obj.display_name,
                txn_date=getattr(record, side.date_field),
                record_id=record.pk,
                qb_id=record.qb_id,
                tms_status=_tms_status(record),
                sync_state=record.sync_status,
                qb_status="Not found",
            )
            line.kind = _compare(record, copy, line)
            lines.append(line)
        known = set(
            rt.model.objects.filter(
                company=company, qb_id__in=[c for c in copies if c not in ours]
            ).values_list("qb_id", flat=True)
        )
        for copy in copies.values():
            if copy.qb_id in ours or copy.qb_id in known or copy.deleted:
                continue
            if copy.txn_date is None or not (start <= copy.txn_date <= end):
                continue
            lines.append(
                Line(
                    sync_type=side.sync_type,
                    number=copy.doc_number or f"QuickBooks {copy.qb_id}",
                    party=copy.party_name,
                    txn_date=copy.txn_date,
                    kind="only_in_quickbooks",
                    qb_id=copy.qb_id,
                    qb_amount=copy.total,
                    qb_balance=copy.balance,
                    qb_status=_qb_status(copy),
                    tms_status="Not in the TMS",
                )
            )
    found = {line.key: line for line in lines if line.kind}
    acks = ReconciliationAcknowledgement.objects.filter(company=company, key__in=found)
    for ack in acks.select_related("user"):
        who = ack.user.get_username() if ack.user else "someone"
        found[ack.key].acknowledged = f"{who}, {ack.created_at:%Y-%m-%d}" + (
            f": {ack.note}" if ack.note else ""
        )
    order = {kind: n for n, kind in enumerate(KINDS)}
    lines.sort(
        key=lambda line: (
            0 if line.kind and not line.acknowledged else 1 if line.kind else 2,
            order.get(line.kind, 99),
            line.sync_type,
            line.txn_date or date.min,
            line.number,
        )
    )
    covered = bool(state and state.covered_from and state.covered_from <= start)
    return Report(
        company, start, end, party, lines, state.refreshed_at if state else None, covered, types_off
    )


CSV_COLUMNS = [
    "difference", "type", "number", "customer_or_vendor", "date", "tms_amount",
    "quickbooks_amount", "tms_open", "quickbooks_open", "tms_status", "quickbooks_status",
    "sync_status", "quickbooks_id", "note", "acknowledged",
]  # fmt: skip


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with these as a formula.
    return (
        "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(text) else text
    )


def _numeric(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def report_csv(rep: Report) -> Iterator[str]:
    """The report as CSV rows (differences first), for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for line in rep.lines:
        writer.writerow(
            [
                _cell(value)
                for value in (
                    line.kind_label,
                    line.type_label,
                    line.number,
                    line.party,
                    line.txn_date,
                    line.tms_amount,
                    line.qb_amount,
                    line.tms_balance,
                    line.qb_balance,
                    line.tms_status,
                    line.qb_status,
                    line.sync_state,
                    line.qb_id,
                    line.note,
                    line.acknowledged,
                )
            ]  # fmt: skip
        )
        yield flush()
    for name, both in rep.totals().items():
        writer.writerow(["Total", TOTAL_LABELS[name], "", "", "", both["tms"], both["quickbooks"]])
    yield flush()


# --- runs: on request and nightly ---------------------------------------------------------------


def default_period(today: date | None = None) -> tuple[date, date]:
    today = today or timezone.localdate()
    return today - timedelta(days=settings.RECONCILE_DAYS), today


def refresh_and_report(
    *, company: Company, start: date, end: date, party: str = ""
) -> tuple[Report, int]:
    """A person's "Refresh from QuickBooks": copies brought up to date, then the report."""
    run = ReconciliationRun.objects.create(
        company=company,
        trigger=ReconciliationRun.Trigger.MANUAL,
        period_start=start,
        period_end=end,
    )
    try:
        run.reads = refresh_copies(company=company, since=start)
    except (QboError, NeedsReconnect) as exc:
        run.error = f"QuickBooks could not be read: {exc}"[:500]
        run.finished_at = timezone.now()
        run.save(update_fields=["error", "finished_at", "reads"])
        raise
    rep = report(company=company, start=start, end=end, party=party)
    _keep(run, rep, opened=0)
    return rep, run.reads


def _keep(run: ReconciliationRun, rep: Report, *, opened: int) -> None:
    run.documents = len(rep.lines)
    run.counts = rep.counts()
    run.totals = rep.totals()
    run.differences = [line.as_json() for line in rep.differences]
    run.new_problems = opened
    run.finished_at = timezone.now()
    run.save()


def _problem_message(line: Line) -> str:
    said = {
        "missing_in_quickbooks": line.note,
        "deleted_in_quickbooks": "QuickBooks holds it as deleted.",
        "voided_in_quickbooks": "QuickBooks shows it voided; the TMS does not.",
        "voided_in_tms": "It is void in the TMS, but QuickBooks still holds it at "
        f"{line.qb_amount}.",
        "amount_differs": f"TMS amount {line.tms_amount}, QuickBooks {line.qb_amount}.",
        "paid_differs": f"TMS open {line.tms_balance}, QuickBooks open {line.qb_balance}.",
    }
    return f"Reconciliation of {timezone.localdate():%Y-%m-%d}: {said[line.kind]}"


def _open_problem(line: Line) -> bool:
    """A new difference on a record the TMS believes synced: a Problem Sync row with the kind's
    own reason; QuickBooks' version is kept on it (a person may overwrite exactly that one)."""
    reason = PROBLEM_REASON.get(line.kind)
    if reason is None or line.record_id is None or line.sync_state not in BELIEVED_SYNCED:
        return False
    model = RECORD_TYPES[line.sync_type].model
    record = model.objects.filter(pk=line.record_id, sync_status__in=BELIEVED_SYNCED).first()
    if record is None:
        return False
    copy = QuickBooksDocument.objects.filter(
        company_id=record.company_id, entity=SIDE_OF[line.sync_type].entity, qb_id=record.qb_id
    ).first()
    drift = None
    if copy is not None and copy.data:
        drift = drift_since_last_write(
            sync_type=line.sync_type, record_id=record.pk, current=copy.data
        )
    elif copy is not None:
        drift = Drift(token=copy.sync_token, known=False)
    flag(record, reason, _problem_message(line), copy.data if copy else None, drift)
    return True


def run_nightly(*, run_id: int) -> ReconciliationRun:
    """The nightly run claimed by `reconcile_due`: copies refreshed, a snapshot kept, and the
    differences not in the last nightly snapshot turned into Problem Sync rows."""
    run = ReconciliationRun.objects.select_related("company").get(pk=run_id)
    if run.finished_at is not None:
        return run
    company = run.company
    try:
        run.reads = refresh_copies(company=company, since=run.period_start)
    except (QboError, NeedsReconnect) as exc:
        run.error = f"QuickBooks could not be read: {exc}"[:500]
        run.finished_at = timezone.now()
        run.save(update_fields=["error", "finished_at", "reads"])
        return run
    rep = report(company=company, start=run.period_start, end=run.period_end)
    previous = (
        ReconciliationRun.objects.filter(
            company=company, trigger=run.trigger, finished_at__isnull=False, error=""
        )
        .exclude(pk=run.pk)
        .order_by("-started_at")
        .first()
    )
    seen = {d.get("key") for d in previous.differences} if previous else set()
    opened = 0
    for line in rep.differences:
        if line.key not in seen:
            with transaction.atomic():
                opened += _open_problem(line)
    _keep(run, rep, opened=opened)
    return run


def reconcile_due(*, now: datetime | None = None) -> list[int]:
    """Beat's tick: a nightly run claimed for each connected company not reconciled today
    (after `RECONCILE_HOUR`, UTC), so a missed night (a restart) is caught up the same day."""
    now = now or timezone.now()
    if not settings.RECONCILE_ENABLED or now.astimezone(UTC).hour < settings.RECONCILE_HOUR:
        return []
    if usage.reads_paused_now() is not None:
        return []  # Intuit refuses reads: tomorrow, or when the probe finds them back
    today = now.astimezone(UTC).date()
    start, end = default_period(today)
    claimed = []
    for connection in QuickBooksConnection.objects.filter(
        status=QuickBooksConnection.Status.CONNECTED
    ).exclude(realm_id=""):
        with transaction.atomic():
            company = Company.objects.select_for_update().get(pk=connection.company_id)
            if ReconciliationRun.objects.filter(
                company=company,
                trigger=ReconciliationRun.Trigger.NIGHTLY,
                started_at__date=today,
            ).exists():
                continue
            run = ReconciliationRun.objects.create(
                company=company,
                trigger=ReconciliationRun.Trigger.NIGHTLY,
                period_start=start,
                period_end=end,
                started_at=now,
            )
        claimed.append(run.pk)
    return claimed


def difference_acknowledge(
    *, company: Company, key: str, user: User | None, note: str = ""
) -> ReconciliationAcknowledgement:
    """A person accepts a difference as it is (a document kept in QuickBooks only on purpose);
    the row itself is the audit: who, when, why."""
    kind = key.split(":", 1)[0]
    if (
        kind not in KINDS
        or key.count(":") != 2
        or len(key) > ReconciliationAcknowledgement.KEY_LENGTH
    ):
        raise ValidationError("That is not a difference of this report; reload the page.")
    ack, _ = ReconciliationAcknowledgement.objects.get_or_create(
        company=company, key=key, defaults={"user": user, "note": note.strip()[:300]}
    )
    return ack


def difference_reopen(*, company: Company, key: str) -> int:
    deleted, _ = ReconciliationAcknowledgement.objects.filter(company=company, key=key).delete()
    return deleted


def latest_runs(*, company: Company, limit: int = 10) -> list[ReconciliationRun]:
    return list(ReconciliationRun.objects.filter(company=company).order_by("-started_at")[:limit])


def last_nightly(*, company: Company) -> ReconciliationRun | None:
    """The latest finished nightly run (Problem Sync points at what it could not turn into
    rows: documents in QuickBooks only)."""
    return (
        ReconciliationRun.objects.filter(
            company=company, trigger=ReconciliationRun.Trigger.NIGHTLY, finished_at__isnull=False
        )
        .order_by("-started_at")
        .first()
    )
