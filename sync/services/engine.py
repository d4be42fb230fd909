"""The push engine: claim → prepare → write → settle, the same for every record type.

Guarantees (DESIGN.md): a record is pushed by one worker at a time (conditional claim with a
lease); every write carries a deterministic requestid; after an ambiguous outcome the next
push looks the object up by natural key before creating; nothing leaves the owed states
except to SYNCED, PROBLEM (with a reason), SKIPPED (toggle/draft) or by a human.
"""

import hashlib
import json
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from finance.models import FinanceSettings, Invoice
from finance.registry import SYNC_ORDER
from finance.services import (
    finance_settings_get,
    invoice_record_quickbooks_balance,
    invoice_refresh_paid_status,
)
from finance.syncstate import CLAIMABLE, SyncStatus
from sync.mappers import (
    MAPPERS,
    DependencyWait,
    Mapper,
    MappingProblem,
    load_records,
)
from sync.models import ProblemEvent, QuickBooksConnection, SyncAttempt
from sync.services.client import (
    NeedsReconnect,
    QboError,
    QuickBooksSession,
    classify,
    quote,
    session_for,
)

logger = logging.getLogger(__name__)
S = SyncStatus


# --- context ------------------------------------------------------------------------------


@dataclass
class SyncContext:
    company_id: int
    settings: FinanceSettings
    connection: QuickBooksConnection | None
    offline: bool = False
    _session: QuickBooksSession | None = field(default=None, repr=False)

    @classmethod
    def for_company(cls, company_id: int, *, offline: bool = False) -> "SyncContext":
        from finance.models import Company

        company = Company.objects.get(pk=company_id)
        connection = QuickBooksConnection.objects.filter(company_id=company_id).first()
        return cls(company_id, finance_settings_get(company=company), connection, offline)

    @property
    def usable(self) -> bool:
        return self.connection is not None and self.connection.is_usable

    @property
    def session(self) -> QuickBooksSession:
        if self._session is None:
            if not self.usable:
                raise NeedsReconnect("QuickBooks is not connected")
            self._session = session_for(self.connection)
        return self._session

    def income_account_id(self) -> str:
        """The income account new items post to: from settings, else found or made once."""
        if self.settings.income_account_ref:
            return self.settings.income_account_ref
        if self.offline:
            return "(income account chosen at sync time)"
        found = self.session.query(
            "SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1"
        )
        if found:
            account_id = found[0]["Id"]
        else:
            account_id = self.session.create(
                "Account",
                {"Name": "Trucking Services", "AccountType": "Income"},
                request_id=f"pqb-acct-{self.connection.realm_id}",
            )["Id"]
        FinanceSettings.objects.filter(pk=self.settings.pk).update(income_account_ref=account_id)
        self.settings.income_account_ref = account_id
        return account_id


def request_id(realm: str, sync_type: str, pk: int, version: int, op: str) -> str:
    """Deterministic per (realm, type, record, version, operation); ≤ 35 characters."""
    digest = hashlib.sha1(f"{realm}:{sync_type}:{pk}:{version}:{op}".encode()).hexdigest()
    return f"pqb{digest[:32]}"


# --- claim and settle -----------------------------------------------------------------------


@dataclass
class Claim:
    record: object
    mapper: Mapper
    version: int
    lease: object
    lookup_first: bool
    attempts: int


def _claim(mapper: Mapper, record) -> Claim | None:
    """Conditional UPDATE: only one worker moves a record to IN_FLIGHT for a given version."""
    now = timezone.now()
    lease = now + timedelta(
        seconds=settings.SYNC_LEASE_SECONDS, microseconds=random.randint(1, 999)
    )
    due = Q(sync_status=S.PENDING) | Q(
        sync_status=S.RETRY_WAIT, next_retry_at__lte=now + timedelta(seconds=1)
    )
    claimed = (
        mapper.model.objects.filter(due, pk=record.pk, version=record.version)
        .filter(sync_status__in=CLAIMABLE)
        .update(
            sync_status=S.IN_FLIGHT,
            lease_expires_at=lease,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if claimed != 1:
        return None
    record.sync_status = S.IN_FLIGHT
    return Claim(
        record=record,
        mapper=mapper,
        version=record.version,
        lease=lease,
        lookup_first=record.create_uncertain and not record.qb_id,
        attempts=record.attempts + 1,
    )


def _claim_many(mapper: Mapper, records: list) -> dict[int, Claim]:
    """`_claim` for a batch in two queries: one conditional UPDATE (each record at the version
    we loaded) with one lease for the batch, then which rows carry that lease."""
    if not records:
        return {}
    now = timezone.now()
    lease = now + timedelta(
        seconds=settings.SYNC_LEASE_SECONDS, microseconds=random.randint(1, 999)
    )
    due = Q(sync_status=S.PENDING) | Q(
        sync_status=S.RETRY_WAIT, next_retry_at__lte=now + timedelta(seconds=1)
    )
    at_version = Q()
    for record in records:
        at_version |= Q(pk=record.pk, version=record.version)
    mapper.model.objects.filter(due).filter(at_version).filter(sync_status__in=CLAIMABLE).update(
        sync_status=S.IN_FLIGHT,
        lease_expires_at=lease,
        attempts=F("attempts") + 1,
        last_attempt_at=now,
    )
    mine = set(
        mapper.model.objects.filter(
            pk__in=[r.pk for r in records], sync_status=S.IN_FLIGHT, lease_expires_at=lease
        ).values_list("pk", flat=True)
    )
    claims = {}
    for record in records:
        if record.pk in mine:
            record.sync_status = S.IN_FLIGHT
            claims[record.pk] = Claim(
                record=record,
                mapper=mapper,
                version=record.version,
                lease=lease,
                lookup_first=record.create_uncertain and not record.qb_id,
                attempts=record.attempts + 1,
            )
    return claims


def _mine(claim: Claim):
    return claim.mapper.model.objects.filter(
        pk=claim.record.pk, sync_status=S.IN_FLIGHT, lease_expires_at=claim.lease
    )


def _settle_ok(claim: Claim, obj: dict, *, linked: bool = False) -> str:
    extra = claim.mapper.apply(claim.record, obj)
    now = timezone.now()
    common = dict(
        qb_id=str(obj["Id"]),
        qb_sync_token=str(obj.get("SyncToken", "")),
        synced_version=claim.version,
        last_synced_at=now,
        lease_expires_at=None,
        next_retry_at=None,
        create_uncertain=False,
        last_error_code="",
        last_error_message="",
        problem_reason="",
        problem_since=None,
        attempts=0,
        **extra,
    )
    was_problem = claim.record.problem_reason
    updated = _mine(claim).filter(version=claim.version).update(sync_status=S.SYNCED, **common)
    if not updated:
        # Changed while in flight: keep what QuickBooks told us, and go again.
        updated = _mine(claim).update(sync_status=S.PENDING, **common)
        if updated:
            _enqueue_later(claim.mapper.sync_type, claim.record.pk, 0)
    if was_problem and updated:
        ProblemEvent.objects.create(
            record_type=claim.mapper.sync_type,
            record_id=claim.record.pk,
            kind=ProblemEvent.Kind.RESOLVED,
            reason=was_problem,
            how="synced",
        )
    if claim.mapper.sync_type == "invoice" and obj.get("Balance") not in (None, ""):
        _settle_balance(claim.record, obj)
    return "linked" if linked else "synced"


def _settle_balance(invoice, obj: dict) -> None:
    """Keep QuickBooks' Balance from the answer (unless a newer one arrived meanwhile), and
    refresh the paid status only when it can change: not when nothing is paid there and
    nothing was before (TMS payments already set the status when they were entered)."""
    balance = Decimal(str(obj["Balance"]))
    previous = invoice.qb_balance
    if not invoice_record_quickbooks_balance(
        invoice=invoice, balance=balance, sync_token=obj.get("SyncToken", "")
    ):
        return
    if balance >= invoice.total and previous in (None, invoice.total):
        return
    invoice_refresh_paid_status(invoice=Invoice.objects.get(pk=invoice.pk))


def _backoff(attempts: int) -> float:
    base = settings.SYNC_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1))
    capped = min(base, settings.SYNC_RETRY_MAX_SECONDS)
    return capped * random.uniform(0.75, 1.25)  # jitter: workers don't come back in step


def _settle_retry(claim: Claim, error: QboError, *, counted: bool = True, delay=None) -> str:
    attempts = claim.attempts if counted else claim.attempts - 1
    if counted and attempts >= settings.SYNC_MAX_ATTEMPTS:
        return _settle_problem(claim, "too_many_attempts", error)
    if delay is None:
        delay = _backoff(attempts)
    next_at = timezone.now() + timedelta(seconds=delay)
    _mine(claim).update(
        sync_status=S.RETRY_WAIT,
        attempts=attempts,
        next_retry_at=next_at,
        lease_expires_at=None,
        create_uncertain=claim.lookup_first or error.ambiguous,
        last_error_code=error.code,
        last_error_message=error.message[:2000],
    )
    _enqueue_later(claim.mapper.sync_type, claim.record.pk, delay)
    return "retry"


def _settle_problem(claim: Claim, reason: str, error: QboError | None, message: str = "") -> str:
    now = timezone.now()
    text = message or (error.message if error else "")
    if error and error.detail and error.detail not in text:
        text = f"{text} — {error.detail}"
    updated = _mine(claim).update(
        sync_status=S.PROBLEM,
        problem_reason=reason,
        problem_since=Case(
            When(problem_since__isnull=True, then=Value(now)), default=F("problem_since")
        ),
        lease_expires_at=None,
        next_retry_at=None,
        create_uncertain=claim.lookup_first or bool(error and error.ambiguous),
        last_error_code=error.code if error else "",
        last_error_message=text[:2000],
    )
    if updated:
        ProblemEvent.objects.create(
            record_type=claim.mapper.sync_type,
            record_id=claim.record.pk,
            kind=ProblemEvent.Kind.OPENED,
            reason=reason,
        )
    return "problem"


def _settle_skip(claim: Claim, message: str) -> str:
    _mine(claim).update(
        sync_status=S.SKIPPED,
        lease_expires_at=None,
        next_retry_at=None,
        attempts=0,
        last_error_code="",
        last_error_message=message,
    )
    return "skipped"


def _release(claim: Claim, message: str, *, delay: float | None = None) -> str:
    """Give the record back without counting the attempt (waiting on a dependency/connection)."""
    _mine(claim).update(
        sync_status=S.RETRY_WAIT if delay else S.PENDING,
        attempts=claim.attempts - 1,
        next_retry_at=timezone.now() + timedelta(seconds=delay) if delay else None,
        lease_expires_at=None,
        last_error_message=message,
    )
    if delay:
        _enqueue_later(claim.mapper.sync_type, claim.record.pk, delay)
    return "waiting"


def _enqueue_later(sync_type: str, pk: int, delay: float) -> None:
    """Due-now work goes straight back to the queue. Later retries are left to the beat sweep
    (it claims RETRY_WAIT records once next_retry_at passes): countdown tasks would sit in
    worker memory, and with acks_late and prefetch 1 they starve the consumer."""
    if delay > 0:
        return

    def send():
        from sync.tasks import push_record

        try:
            push_record.delay(sync_type, pk, "retry")
        except Exception:  # noqa: BLE001 - the sweep will find it
            logger.warning("could not re-enqueue %s %s", sync_type, pk)

    transaction.on_commit(send)


# --- prepare and write ------------------------------------------------------------------


@dataclass
class Write:
    op: str  # create | update | void
    body: dict
    rid: str


def _auto_push(ctx: SyncContext):
    def push(dependency):
        _push_claimed(ctx, MAPPERS[dependency.sync_type], dependency)

    return push


def _prepare(ctx: SyncContext, claim: Claim) -> Write:
    """Raises MappingProblem / DependencyWait; returns what to send."""
    record, mapper = claim.record, claim.mapper
    mapper.dependencies(record, ctx, _auto_push(ctx))
    realm = ctx.connection.realm_id
    if mapper.sync_type == "invoice" and record.status == Invoice.Status.VOID:
        body = {"Id": record.qb_id, "SyncToken": record.qb_sync_token or "0"}
        return Write("void", body, request_id(realm, "invoice", record.pk, claim.version, "void"))
    body = mapper.body(record, ctx)
    if record.qb_id:
        body.update({"Id": record.qb_id, "SyncToken": record.qb_sync_token or "0"})
        if mapper.sync_type in {"customer", "item"}:
            body["sparse"] = True
        op = "update"
    else:
        op = "create"
    return Write(op, body, request_id(realm, mapper.sync_type, record.pk, claim.version, op))


def _lookup(ctx: SyncContext, claim: Claim) -> dict | None:
    """Natural-key look-up: the object a lost or replayed create may already have made."""
    rows = ctx.session.query(claim.mapper.natural_key_query(claim.record))
    matches = [row for row in rows if claim.mapper.matches(claim.record, row)]
    return matches[0] if matches else None


def _send(ctx: SyncContext, claim: Claim, write: Write) -> dict:
    session, entity = ctx.session, claim.mapper.entity
    if write.op == "create":
        return session.create(entity, write.body, request_id=write.rid)
    if write.op == "update":
        return session.update(entity, write.body, request_id=write.rid)
    url = f"{session.client.api_url}/company/{session.realm}/{entity.lower()}"
    result = session.call(
        "post",
        url,
        json.dumps(write.body),
        params={"operation": "void"},
        request_id=write.rid,
        write=True,
    )
    return result[entity]


_TXN_ID = re.compile(r"TxnId=(\d+)")


def _resolve_fault(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str:
    """Permanent-looking faults we can often fix ourselves before calling them problems."""
    record, mapper, session = claim.record, claim.mapper, ctx.session
    if error.kind == "stale" and write.op in {"update", "void"}:
        current = session.read(mapper.entity, record.qb_id)
        write.body["SyncToken"] = current.get("SyncToken", "0")
        write.rid = request_id(
            session.realm,
            mapper.sync_type,
            record.pk,
            claim.version,
            f"{write.op}-{current['SyncToken']}",
        )
        try:
            return _settle_ok(claim, _send(ctx, claim, write))
        except QboError as again:
            return _settle_problem(claim, "stale_object", again)
    if error.kind == "duplicate_name":
        found = _lookup(ctx, claim)
        if mapper.sync_type == "customer":
            if found and mapper.email_matches(record, found):
                return _link_and_update(ctx, claim, found)
            if found:
                theirs = (found.get("PrimaryEmailAddr") or {}).get("Address", "no email")
                return _settle_problem(
                    claim,
                    "customer_email_mismatch",
                    error,
                    f"QuickBooks customer {found['Id']} is named {found.get('DisplayName')!r} "
                    f"with email {theirs}; ours has {record.billing_email or 'no email'}.",
                )
            return _settle_problem(
                claim,
                "duplicate_name",
                error,
                f"{record.display_name!r} is already used by a vendor or employee in "
                "QuickBooks (names are shared between them).",
            )
        if found:  # an item with our name: the same service, link it
            return _link_and_update(ctx, claim, found)
        return _settle_problem(claim, "duplicate_name", error)
    if error.kind == "duplicate_doc":
        found = _lookup(ctx, claim)
        if found and write.op == "create":
            # Our own earlier create whose answer we never got (requestid replay failed).
            return _link_and_update(ctx, claim, found)
        txn = _TXN_ID.search(error.detail or "") or _TXN_ID.search(error.message)
        existing = f" (QuickBooks invoice Id {txn.group(1)})" if txn else ""
        return _settle_problem(
            claim,
            "duplicate_doc_number",
            error,
            f"Document number {getattr(record, 'doc_number', '') or getattr(record, 'number', '')} "
            f"is already used in QuickBooks{existing}.",
        )
    if error.kind == "not_found":
        if write.op in {"update", "void"}:
            try:
                session.read(mapper.entity, record.qb_id)
            except QboError as missing:
                if missing.kind in {"not_found", "invalid_reference"}:
                    return _settle_problem(claim, "deleted_in_quickbooks", error)
        return _settle_problem(claim, "inactive_reference", error)
    reasons = {
        "required": "required_field",
        "invalid_reference": "invalid_reference",
        "permission": "permission",
        "internal": "internal",
    }
    reason = reasons.get(error.kind, "validation")
    if reason == "validation" and "Description" in (error.message + error.detail):
        reason = "description_too_long"
    return _settle_problem(claim, reason, error)


def _link_and_update(ctx: SyncContext, claim: Claim, found: dict) -> str:
    """Adopt an existing QuickBooks object, then make it match the current TMS version."""
    claim.record.qb_id = str(found["Id"])
    claim.record.qb_sync_token = str(found.get("SyncToken", "0"))
    write = _prepare(ctx, claim)
    try:
        obj = _send(ctx, claim, write)
    except QboError as error:
        if error.kind != "stale":
            raise
        # Changed since the look-up (a worker whose lease ran out linked it too, or a QuickBooks
        # user edited it): re-read once and apply ours on top, as for any stale update.
        current = ctx.session.read(claim.mapper.entity, claim.record.qb_id)
        token = str(current.get("SyncToken", "0"))
        claim.record.qb_sync_token = write.body["SyncToken"] = token
        write.rid = request_id(
            ctx.connection.realm_id,
            claim.mapper.sync_type,
            claim.record.pk,
            claim.version,
            f"{write.op}-{token}",
        )
        obj = _send(ctx, claim, write)
    return _settle_ok(claim, obj, linked=True)


def _plan(ctx: SyncContext, claim: Claim) -> "Write | str":
    """What to send for a claimed record, or the outcome when nothing is to be sent."""
    record, mapper = claim.record, claim.mapper
    skip = mapper.skip_reason(record, ctx)
    if skip:
        return _settle_skip(claim, skip)
    if not ctx.usable:
        return _release(claim, "Waiting for QuickBooks to be connected.")
    if claim.lookup_first:
        found = _lookup(ctx, claim)
        if found:
            outcome = _link_and_update(ctx, claim, found)
            _record(claim, None, SyncAttempt.Outcome.LINKED, None, ctx.session, "lookup")
            return outcome
    return _prepare(ctx, claim)


def _handle(ctx: SyncContext, claim: Claim, write: "Write | None", exc: Exception) -> str:
    """Every failure of a claimed record ends here and leaves it in a state with a reason."""
    session = ctx._session
    if isinstance(exc, MappingProblem):
        _record(
            claim, write, SyncAttempt.Outcome.PROBLEM, QboError("mapping", exc.message), session
        )
        return _settle_problem(claim, exc.reason, None, exc.message)
    if isinstance(exc, DependencyWait):
        return _release(claim, str(exc), delay=15)
    if isinstance(exc, NeedsReconnect):
        _record(claim, write, SyncAttempt.Outcome.WAITING, QboError("reconnect", str(exc)), session)
        return _release(claim, "Waiting: QuickBooks needs reconnecting.")
    if isinstance(exc, QboError):
        if exc.kind == "throttle":
            if exc.code != "budget":  # our own limiter sent nothing: no attempt to record
                _record(claim, write, SyncAttempt.Outcome.RETRY, exc, session)
            delay = exc.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS
            return _settle_retry(claim, exc, counted=False, delay=delay)
        if exc.kind in {"transient", "auth"}:
            if write is not None and write.op == "create" and exc.ambiguous:
                claim.lookup_first = True
            _record(claim, write, SyncAttempt.Outcome.RETRY, exc, session)
            return _settle_retry(claim, exc)
        _record(claim, write, SyncAttempt.Outcome.PROBLEM, exc, session)
        if write is None:
            return _settle_problem(claim, "internal", exc)
        try:
            return _resolve_fault(ctx, claim, write, exc)
        except Exception as second:  # noqa: BLE001 - the fix-up itself failed: classify that
            if isinstance(second, QboError) and second.kind in {"transient", "throttle", "auth"}:
                throttled = second.kind == "throttle"
                return _settle_retry(
                    claim,
                    second,
                    counted=not throttled,
                    delay=(second.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS)
                    if throttled
                    else None,
                )
            return _handle(ctx, claim, None, second)
    logger.exception(
        "unexpected failure pushing %s %s", claim.mapper.sync_type, claim.record.pk, exc_info=exc
    )
    error = QboError("internal", f"{exc.__class__.__name__}: {exc}")
    _record(claim, write, SyncAttempt.Outcome.PROBLEM, error, session)
    return _settle_problem(claim, "internal", error)


def _send_and_settle(ctx: SyncContext, claim: Claim, write: Write) -> str:
    try:
        obj = _send(ctx, claim, write)
    except Exception as exc:  # noqa: BLE001 - _handle classifies everything
        return _handle(ctx, claim, write, exc)
    _record(claim, write, SyncAttempt.Outcome.OK, None, ctx._session)
    return _settle_ok(claim, obj)


def _execute(ctx: SyncContext, claim: Claim) -> str:
    try:
        plan = _plan(ctx, claim)
    except Exception as exc:  # noqa: BLE001 - _handle classifies everything
        return _handle(ctx, claim, None, exc)
    if isinstance(plan, str):
        return plan
    return _send_and_settle(ctx, claim, plan)


def _attempt_fields(claim, operation, rid, outcome, error, session, payload=None):
    return {
        "record_type": claim.mapper.sync_type,
        "record_id": claim.record.pk,
        "record_version": claim.version,
        "operation": operation,
        "request_id": rid,
        "outcome": outcome,
        "http_status": (error.http_status if error else None)
        or (session.last_status if session else None),
        "fault_code": error.code if error else "",
        "message": (error.message + (f" — {error.detail}" if error.detail else ""))[:2000]
        if error
        else "",
        "duration_ms": session.last_duration_ms if session else 0,
        "payload": payload or {},
    }


def _attempt(claim, write, outcome, error, session, operation=None) -> SyncAttempt:
    return SyncAttempt(
        **_attempt_fields(
            claim,
            operation or (write.op if write else "prepare"),
            write.rid if write else "",
            outcome,
            error,
            session,
            write.body if write else None,
        )
    )


def _record(claim, write, outcome, error, session, operation=None):
    _attempt(claim, write, outcome, error, session, operation).save()


def _push_claimed(ctx: SyncContext, mapper: Mapper, record) -> str:
    claim = _claim(mapper, record)
    if claim is None:
        return "not-claimed"
    return _execute(ctx, claim)


# --- public services ---------------------------------------------------------------------


def _type_allowed(ctx: SyncContext, mapper: Mapper) -> bool:
    return ctx.settings.type_enabled(mapper.sync_type)


def skip_disabled(*, sync_type: str, pks) -> int:
    model = MAPPERS[sync_type].model
    return model.objects.filter(pk__in=pks, sync_status__in=CLAIMABLE).update(
        sync_status=S.SKIPPED,
        next_retry_at=None,
        last_error_message="Sync of this record type is switched off in Finance settings.",
    )


def push_record(*, sync_type: str, pk: int, trigger: str = "sweep") -> str:
    """Push one record now (push on change, re-sync, a due retry)."""
    mapper = MAPPERS[sync_type]
    record = load_records(sync_type, [pk]).first()
    if record is None:
        return "missing"
    ctx = SyncContext.for_company(record.company_id)
    if trigger == "change" and not ctx.settings.push_on_change:
        return "scheduled"
    if not _type_allowed(ctx, mapper):
        skip_disabled(sync_type=sync_type, pks=[pk])
        return "skipped"
    if not ctx.usable:
        return "waiting"
    return _push_claimed(ctx, mapper, record)


def push_batch(*, sync_type: str, pks: list[int]) -> dict[str, int]:
    """Push many records of one type: lookups and dependencies singly, writes in batches of 30."""
    from sync.services.batch import push_many

    return push_many(sync_type=sync_type, pks=pks)


def push_all_now(*, sync_type: str | None = None, progress=None) -> dict[str, int]:
    """Push everything due, in this process (management command `sync_now`)."""
    totals: dict[str, int] = {}
    reclaim_expired_leases()
    types = [sync_type] if sync_type else SYNC_ORDER
    for name in types:
        mapper = MAPPERS[name]
        pks = list(due_queryset(mapper.model).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), settings.SYNC_BATCH_SIZE):
            chunk = pks[start : start + settings.SYNC_BATCH_SIZE]
            for outcome, count in push_batch(sync_type=name, pks=chunk).items():
                totals[outcome] = totals.get(outcome, 0) + count
            if progress:
                progress(name, min(start + len(chunk), len(pks)), len(pks))
    return totals


def due_queryset(model, *, now=None):
    now = now or timezone.now()
    return model.objects.filter(
        Q(sync_status=S.PENDING, next_retry_at__isnull=True)
        | Q(sync_status=S.PENDING, next_retry_at__lte=now)
        | Q(sync_status=S.RETRY_WAIT, next_retry_at__lte=now)
    )


def reclaim_expired_leases() -> int:
    """A worker died mid-push: its records go back to PENDING, marked for a look-up first."""
    now = timezone.now()
    total = 0
    for mapper in MAPPERS.values():
        total += mapper.model.objects.filter(
            sync_status=S.IN_FLIGHT, lease_expires_at__lt=now
        ).update(
            sync_status=S.PENDING,
            lease_expires_at=None,
            next_retry_at=None,
            create_uncertain=Case(When(qb_id="", then=Value(True)), default=F("create_uncertain")),
            last_error_message="The worker stopped mid-push; checked and retried.",
        )
    if total:
        logger.warning("returned %s expired in-flight records to pending", total)
    return total


def classify_fault(fault: dict) -> QboError:
    """A per-item Fault of a batch response, classified like a whole-call fault."""
    from quickbooks.exceptions import QuickbooksException

    errors = fault.get("Error") or [{}]
    first = errors[0]
    code = str(first.get("code", ""))
    exc = QuickbooksException(
        first.get("Message", "QuickBooks fault"), code, first.get("Detail", "")
    )
    status = 500 if fault.get("type") == "SystemFault" else 400
    return classify(exc, status, None, write=True)


__all__ = [
    "SyncContext",
    "push_record",
    "push_batch",
    "push_all_now",
    "reclaim_expired_leases",
    "due_queryset",
    "request_id",
    "quote",
]
