"""The push engine: one pipeline for every record type, used by single pushes and batches.

    claim / claim_many ─▶ plan ─▶ send ─▶ settle_ok
                            │       └────▶ settle_failure ─▶ (FAILURES table) retry | problem
                            └─▶ an outcome without a write (skipped, waiting, linked)

Guarantees (DESIGN.md): a record is pushed by one worker at a time (conditional claim with a
lease); every write carries a deterministic requestid; after an ambiguous outcome the next
push looks the object up by natural key before creating; nothing leaves the owed states
except to SYNCED, PROBLEM (with a reason), SKIPPED (toggle/draft) or by a human. Every status
change goes through finance.syncstate.move(); every call to QuickBooks writes a SyncAttempt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from finance.models import Company, FinanceSettings, SyncedRecord
from finance.services import finance_settings_get
from finance.syncstate import CLAIMABLE, OWED, SYNC_OFF_CODE, SyncStatus, move
from sync.mappers import MAPPERS, DependencyWait, Mapper, MappingProblem
from sync.models import QuickBooksConnection, SyncAttempt
from sync.services import enqueue, usage
from sync.services.client import (
    NeedsReconnect,
    QboError,
    QboObject,
    QuickBooksSession,
    classify,
    session_for,
)
from sync.services.drift import differences, drift_since_last_write, voided
from sync.services.waiting import requeue_waiting_on

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
    def for_company(cls, company_id: int, *, offline: bool = False) -> SyncContext:
        company = Company.objects.get(pk=company_id)
        connection = QuickBooksConnection.objects.filter(company_id=company_id).first()
        return cls(company_id, finance_settings_get(company=company), connection, offline)

    @property
    def usable(self) -> bool:
        return self.connection is not None and self.connection.is_usable

    @property
    def session(self) -> QuickBooksSession:
        if self._session is None:
            if self.connection is None or not self.usable:
                raise NeedsReconnect("QuickBooks is not connected")
            self._session = session_for(self.connection)
        return self._session

    @property
    def realm(self) -> str:
        return self.connection.realm_id if self.connection else ""

    @property
    def income_account_ref(self) -> str:
        """The income account new items post to (ensure_income_account() finds it first)."""
        return self.settings.income_account_ref or "(income account chosen at sync time)"

    def ensure_income_account(self) -> str:
        """From settings, else the first Income account in QuickBooks, else one made once."""
        if self.settings.income_account_ref or self.offline:
            return self.income_account_ref
        found = self.session.query(
            "SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1"
        )
        if found:
            account_id = found[0]["Id"]
        else:
            account_id = self.session.create(
                "Account",
                {"Name": "Trucking Services", "AccountType": "Income"},
                request_id=f"pqb-acct-{self.realm}",
            )["Id"]
        FinanceSettings.objects.filter(pk=self.settings.pk).update(income_account_ref=account_id)
        self.settings.income_account_ref = account_id
        return account_id

    def type_allowed(self, mapper: Mapper[Any]) -> bool:
        return mapper.record_type.enabled(self.settings)


def request_id(realm: str, sync_type: str, pk: int, version: int, op: str) -> str:
    """Deterministic per (realm, type, record, version, operation); ≤ 35 characters."""
    digest = hashlib.sha1(f"{realm}:{sync_type}:{pk}:{version}:{op}".encode()).hexdigest()
    return f"pqb{digest[:32]}"


# --- claim ---------------------------------------------------------------------------------


@dataclass
class Claim:
    record: SyncedRecord
    mapper: Mapper[Any]
    version: int
    lease: datetime
    lookup_first: bool
    attempts: int
    arrived: bool = False  # its first arrival in QuickBooks (or a person's overwrite) settled

    def mine(self) -> QuerySet[SyncedRecord]:
        """The record under this claim's lease. Every settle moves it with
        `sources=[IN_FLIGHT]`, so only while it is still ours, in flight."""
        return self.mapper.model.objects.filter(pk=self.record.pk, lease_expires_at=self.lease)


@dataclass
class Write:
    op: str  # create | update | void
    body: QboObject
    rid: str


def _lease() -> datetime:
    # Microseconds of jitter: two claims never share a lease, so "mine" is exact.
    return timezone.now() + timedelta(
        seconds=settings.SYNC_LEASE_SECONDS, microseconds=random.randint(1, 999)
    )


def _due_now() -> Q:
    now = timezone.now()
    return Q(sync_status=S.PENDING) | Q(
        sync_status=S.RETRY_WAIT, next_retry_at__lte=now + timedelta(seconds=1)
    )


def _claimed(mapper: Mapper[Any], record: SyncedRecord, lease: datetime) -> Claim:
    return Claim(
        record=record,
        mapper=mapper,
        version=record.version,
        lease=lease,
        lookup_first=record.create_uncertain and not record.qb_id,
        attempts=record.attempts + 1,
    )


def claim(mapper: Mapper[Any], record: SyncedRecord) -> Claim | None:
    """Conditional UPDATE: only one worker moves a record to IN_FLIGHT for a given version."""
    return claim_many(mapper, [record]).get(record.pk)


def claim_many(mapper: Mapper[Any], records: list[SyncedRecord]) -> dict[int, Claim]:
    """Claim records (each at the version we loaded) in two queries: one conditional UPDATE
    with one lease for all, then which rows carry that lease."""
    if not records:
        return {}
    lease = _lease()
    at_version = Q()
    for record in records:
        at_version |= Q(pk=record.pk, version=record.version)
    moved = move(
        mapper.model.objects.filter(_due_now()).filter(at_version),
        S.IN_FLIGHT,
        how="claimed",
        sources=CLAIMABLE,
        lease_expires_at=lease,
        attempts=F("attempts") + 1,
        last_attempt_at=timezone.now(),
    )
    if moved == len(records):
        mine = {r.pk for r in records}  # every one: the lease is new, so they are all ours
    else:
        mine = set(
            mapper.model.objects.filter(
                pk__in=[r.pk for r in records], sync_status=S.IN_FLIGHT, lease_expires_at=lease
            ).values_list("pk", flat=True)
        )
    return {r.pk: _claimed(mapper, r, lease) for r in records if r.pk in mine}


# --- plan ----------------------------------------------------------------------------------


def plan(ctx: SyncContext, claim: Claim) -> Write | str:
    """What to send for a claimed record, or the outcome when nothing is to be sent.
    Raises MappingProblem, DependencyWait or QboError (settle_failure takes them)."""
    record, mapper = claim.record, claim.mapper
    skip = mapper.skip_reason(record, ctx)
    if skip:
        return settle_skip(claim, skip)
    if not ctx.usable:
        return release(claim, "Waiting for QuickBooks to be connected.")
    if claim.lookup_first:
        found = lookup(ctx, claim)
        if found:
            outcome = link_and_update(ctx, claim, found)
            attempt_row(claim, None, SyncAttempt.Outcome.LINKED, None, ctx.session, "lookup").save()
            return outcome
    return prepare(ctx, claim)


def ensure_needs(ctx: SyncContext, claim: Claim) -> None:
    """Act on what the mapper says must be in QuickBooks first: push it now when allowed,
    wait while it is on its way, else the record is a problem naming it."""
    for need in claim.mapper.dependencies(claim.record, ctx):
        dependency = need.record
        if dependency.qb_id:
            continue
        if dependency.sync_status in OWED:
            if not need.push_first:
                raise DependencyWait(f"{need.label} is still being synced")
            push_claimed(ctx, MAPPERS[dependency.sync_type], dependency)
            dependency.refresh_from_db()
            if dependency.qb_id:
                continue
            if dependency.sync_status != S.PROBLEM:
                raise DependencyWait(f"{need.label} is still being synced")
        status = dependency.get_sync_status_display().lower()
        raise MappingProblem(need.reason, f"{need.label} is not in QuickBooks ({status}).")


def prepare(ctx: SyncContext, claim: Claim) -> Write:
    """The write for a claimed record whose dependencies are in QuickBooks."""
    record, mapper = claim.record, claim.mapper
    ensure_needs(ctx, claim)
    mapper.check(record, ctx)
    if mapper.needs_income_account:
        ctx.ensure_income_account()
    if mapper.voidable and mapper.void_requested(record):
        body: QboObject = {"Id": record.qb_id, "SyncToken": record.qb_sync_token or "0"}
        return Write("void", body, _rid(ctx, claim, "void"))
    body = mapper.body(record, ctx)
    if not record.qb_id:
        return Write("create", body, _rid(ctx, claim, "create"))
    body.update({"Id": record.qb_id, "SyncToken": record.qb_sync_token or "0"})
    if mapper.sparse_update:
        body["sparse"] = True
    return Write("update", body, _rid(ctx, claim, "update"))


def _rid(ctx: SyncContext, claim: Claim, op: str) -> str:
    return request_id(ctx.realm, claim.mapper.sync_type, claim.record.pk, claim.version, op)


def lookup(ctx: SyncContext, claim: Claim) -> QboObject | None:
    """Natural-key look-up: the object a lost or replayed create may already have made."""
    with usage.purpose("lookup"):
        rows = ctx.session.query(claim.mapper.natural_key_query(claim.record))
    matches = [row for row in rows if claim.mapper.matches(claim.record, row)]
    return matches[0] if matches else None


def link_and_update(ctx: SyncContext, claim: Claim, found: QboObject) -> str:
    """Adopt an existing QuickBooks object, then make it match the current TMS version."""
    claim.record.qb_id = str(found["Id"])
    claim.record.qb_sync_token = str(found.get("SyncToken", "0"))
    write = prepare(ctx, claim)
    try:
        obj = send(ctx, claim, write)
    except QboError as error:
        if error.kind != "stale":
            raise
        # Changed since the look-up (a worker whose lease ran out linked it too, or a QuickBooks
        # user edited it): re-read once and apply ours on top, as for any stale update.
        obj = _send_on_fresh_token(ctx, claim, write)
    attempt_row(claim, write, SyncAttempt.Outcome.OK, None, ctx._session).save()
    return settle_ok(claim, obj, linked=True)


def _send_on_fresh_token(
    ctx: SyncContext, claim: Claim, write: Write, current: QboObject | None = None
) -> QboObject:
    if current is None:
        with usage.purpose("conflict"):
            current = ctx.session.read(claim.mapper.entity, claim.record.qb_id)
    token = str(current.get("SyncToken", "0"))
    claim.record.qb_sync_token = write.body["SyncToken"] = token
    write.rid = _rid(ctx, claim, f"{write.op}-{token}")
    return send(ctx, claim, write)


# --- send ----------------------------------------------------------------------------------


def send(ctx: SyncContext, claim: Claim, write: Write) -> QboObject:
    if claim.mapper.uploads:
        return claim.mapper.upload(claim.record, ctx, write.body, write.rid)
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


def execute(ctx: SyncContext, claim: Claim) -> str:
    """plan → send → settle for one claimed record; every failure ends settled with a reason."""
    try:
        planned = plan(ctx, claim)
    except Exception as exc:  # noqa: BLE001 - settle_failure classifies everything
        return settle_failure(ctx, claim, None, exc)
    if isinstance(planned, str):
        return planned
    return send_and_settle(ctx, claim, planned)


def send_and_settle(ctx: SyncContext, claim: Claim, write: Write, *, requeue: bool = True) -> str:
    try:
        obj = send(ctx, claim, write)
    except Exception as exc:  # noqa: BLE001 - settle_failure classifies everything
        return settle_failure(ctx, claim, write, exc)
    attempt_row(claim, write, SyncAttempt.Outcome.OK, None, ctx._session).save()
    return settle_ok(claim, obj, requeue=requeue)


# --- settle ----------------------------------------------------------------------------------


def settle_ok(claim: Claim, obj: QboObject, *, linked: bool = False, requeue: bool = True) -> str:
    """Synced. `requeue=False`: the caller requeues what waits on an arrived claim itself (a
    batch does it once for all its records)."""
    fields = dict(
        qb_id=str(obj["Id"]),
        qb_sync_token=str(obj.get("SyncToken", "")),
        synced_version=claim.version,
        last_synced_at=timezone.now(),
        lease_expires_at=None,
        next_retry_at=None,
        create_uncertain=False,
        last_error_code="",
        last_error_message="",
        problem_reason="",
        problem_since=None,
        attempts=0,
        qb_drift={},
        qb_overwrite_token="",
        **claim.mapper.apply(claim.record, obj),
    )
    mine = claim.mine()
    moved = move(
        mine.filter(version=claim.version), S.SYNCED, how="synced", sources=[S.IN_FLIGHT], **fields
    )
    if not moved and move(mine, S.PENDING, how="changed", sources=[S.IN_FLIGHT], **fields):
        # Changed while in flight: keep what QuickBooks told us, and go again now.
        enqueue.push_soon(claim.mapper.sync_type, claim.record.pk, 0)
        moved = 1
    # Its first arrival in QuickBooks, or a person's overwrite (reactivated there): what waits on
    # it goes now.
    claim.arrived = bool(moved) and (
        not claim.record.synced_version or bool(claim.record.qb_overwrite_token)
    )
    if claim.arrived and requeue:
        requeue_waiting_on(claim.record)
    claim.mapper.after_settle(claim.record, obj)
    return "linked" if linked else "synced"


def backoff(attempts: int) -> float:
    base = settings.SYNC_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1))
    capped = min(base, settings.SYNC_RETRY_MAX_SECONDS)
    return capped * random.uniform(0.75, 1.25)  # jitter: workers don't come back in step


def settle_retry(
    claim: Claim, error: QboError, *, counted: bool = True, delay: float | None = None
) -> str:
    attempts = claim.attempts if counted else claim.attempts - 1
    if counted and attempts >= settings.SYNC_MAX_ATTEMPTS:
        return settle_problem(claim, "too_many_attempts", error)
    if delay is None:
        delay = backoff(attempts)
    move(
        claim.mine(),
        S.RETRY_WAIT,
        how="retry",
        sources=[S.IN_FLIGHT],
        attempts=attempts,
        next_retry_at=timezone.now() + timedelta(seconds=delay),
        lease_expires_at=None,
        create_uncertain=claim.lookup_first or error.ambiguous,
        last_error_code=error.code,
        last_error_message=error.message[:2000],
    )
    enqueue.push_soon(claim.mapper.sync_type, claim.record.pk, delay)
    return "retry"


def settle_problem(
    claim: Claim, reason: str, error: QboError | None, message: str = "", **fields: Any
) -> str:
    text = message or (error.message if error else "")
    if error and error.detail and error.detail not in text:
        text = f"{text} — {error.detail}"
    move(
        claim.mine(),
        S.PROBLEM,
        how="sync",
        sources=[S.IN_FLIGHT],
        problem_reason=reason,
        problem_since=Case(
            When(problem_since__isnull=True, then=Value(timezone.now())),
            default=F("problem_since"),
        ),
        lease_expires_at=None,
        next_retry_at=None,
        create_uncertain=claim.lookup_first or bool(error and error.ambiguous),
        last_error_code=error.code if error else "",
        last_error_message=text[:2000],
        **fields,
    )
    return "problem"


def settle_skip(claim: Claim, message: str) -> str:
    move(
        claim.mine(),
        S.SKIPPED,
        how="skipped",
        sources=[S.IN_FLIGHT],
        lease_expires_at=None,
        next_retry_at=None,
        attempts=0,
        last_error_code="",
        last_error_message=message,
    )
    return "skipped"


def release(claim: Claim, message: str, *, delay: float | None = None) -> str:
    """Give the record back without counting the attempt (waiting on a dependency/connection)."""
    move(
        claim.mine(),
        S.RETRY_WAIT if delay else S.PENDING,
        how="waiting",
        sources=[S.IN_FLIGHT],
        attempts=claim.attempts - 1,
        next_retry_at=timezone.now() + timedelta(seconds=delay) if delay else None,
        lease_expires_at=None,
        last_error_message=message,
    )
    if delay:
        enqueue.push_soon(claim.mapper.sync_type, claim.record.pk, delay)
    return "waiting"


# --- failures: a table of what each kind of QuickBooks failure means ---------------------------

Resolver = Callable[[SyncContext, Claim, Write, QboError], "str | None"]


@dataclass(frozen=True)
class Failure:
    recoverable: bool  # retried later (RETRY_WAIT) rather than a problem
    reason: str = ""  # the sync.problems.REASONS key when it becomes a problem
    counted: bool = True  # a retry spends one of the record's attempts
    # Tries to fix the failure ourselves first (re-read, link); None when it cannot.
    resolve: Resolver | None = None


def _stale(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str | None:
    """5010: someone changed it in QuickBooks since our last write. Re-read it; apply ours on
    top only when what they changed is not ours (sync/services/drift.py), or a person agreed to
    overwrite exactly this QuickBooks version. Otherwise a person chooses."""
    if write.op not in {"update", "void"}:
        return None
    record = claim.record
    try:
        with usage.purpose("conflict"):
            current = ctx.session.read(claim.mapper.entity, record.qb_id)
    except QboError as again:
        if again.kind in {"not_found", "invalid_reference"}:
            return settle_problem(claim, "deleted_in_quickbooks", again)
        return settle_problem(claim, "stale_object", again)
    drift = drift_since_last_write(
        sync_type=claim.mapper.sync_type, record_id=record.pk, current=current
    )
    void_by_update = not claim.mapper.voidable and voided(write.body)  # a bill's void
    if voided(current) and (write.op == "void" or void_by_update):
        # Voided there already: what we came to do.
        return settle_ok(claim, current)
    if drift and drift.token != record.qb_overwrite_token:
        return settle_problem(claim, drift.reason, error, drift.summary(), qb_drift=drift.as_json())
    try:
        obj = _send_on_fresh_token(ctx, claim, write, current)
    except QboError as again:
        return settle_problem(claim, "stale_object", again)
    # On record as our last write: the next 5010 compares QuickBooks with this body.
    attempt_row(claim, write, SyncAttempt.Outcome.OK, None, ctx._session).save()
    return settle_ok(claim, obj)


def _name_taken(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str:
    """6240: the name exists; link it when the mapper says it is ours, else say whose it is."""
    found = lookup(ctx, claim)
    if found and claim.mapper.link_allowed(claim.record, found):
        return link_and_update(ctx, claim, found)
    if found is None and claim.mapper.rename_on_clash(claim.record, ctx):
        # Renamed (a new version): it goes again at once under the new name.
        return settle_retry(claim, error, counted=False, delay=0)
    reason, message = claim.mapper.name_taken(claim.record, found)
    return settle_problem(claim, reason, error, message)


_TXN_ID = re.compile(r"TxnId=(\d+)")


def _doc_number_taken(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str:
    """6140: our own earlier create whose answer we never got (replay failed) is linked, and so
    is a document that already holds exactly what we send; anything else (someone's invoice of
    that customer with that number, other lines) is a problem naming it, for a person to compare:
    linking it would write ours over theirs."""
    found = lookup(ctx, claim)
    ours_lost = claim.lookup_first or claim.record.create_uncertain
    if found and write.op == "create" and (ours_lost or not differences(write.body, found)):
        return link_and_update(ctx, claim, found)
    txn = _TXN_ID.search(error.detail or "") or _TXN_ID.search(error.message)
    existing = f" (QuickBooks invoice Id {txn.group(1)})" if txn else ""
    number = claim.mapper.record_type.label(claim.record)
    message = f"Document number {number} is already used in QuickBooks{existing}."
    return settle_problem(claim, "duplicate_doc_number", error, message)


def _missing(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str | None:
    """610 on an update: our own object is gone (deleted), or only something it references."""
    if write.op not in {"update", "void"}:
        return None
    try:
        with usage.purpose("conflict"):
            ctx.session.read(claim.mapper.entity, claim.record.qb_id)
    except QboError as missing:
        if missing.kind in {"not_found", "invalid_reference"}:
            return settle_problem(claim, "deleted_in_quickbooks", error)
    return None


def _uses_a_problem(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str | None:
    """Something the record uses is inactive or gone in QuickBooks (610, 2500). When that is a
    customer, item or invoice already known to have a problem of its own (QuickBooks' change
    pulled in), the record waits on it, and goes by itself once it is fixed."""
    if write.op not in {"create", "update"}:
        return None
    for need in claim.mapper.references(claim.record):
        dependency = type(need.record).objects.filter(pk=need.record.pk).first()
        if dependency is not None and dependency.sync_status == S.PROBLEM:
            message = (
                f"{need.label} has a problem of its own in QuickBooks; fix it and this follows."
            )
            return settle_problem(claim, need.reason, error, message)
    return None


def _missing_or_uses_a_problem(
    ctx: SyncContext, claim: Claim, write: Write, error: QboError
) -> str | None:
    return _missing(ctx, claim, write, error) or _uses_a_problem(ctx, claim, write, error)


def _refused_data(ctx: SyncContext, claim: Claim, write: Write, error: QboError) -> str | None:
    if "Description" in error.message + error.detail:
        return settle_problem(claim, "description_too_long", error)
    return None


FAILURES: dict[str, Failure] = {
    "throttle": Failure(recoverable=True, counted=False),
    # The month's read allowance is spent: the record waits for reads to come back.
    "reads_refused": Failure(recoverable=True, counted=False),
    "transient": Failure(recoverable=True),
    "auth": Failure(recoverable=True),
    "stale": Failure(recoverable=False, reason="validation", resolve=_stale),
    "duplicate_name": Failure(recoverable=False, reason="duplicate_name", resolve=_name_taken),
    "duplicate_doc": Failure(recoverable=False, reason="validation", resolve=_doc_number_taken),
    "not_found": Failure(
        recoverable=False, reason="inactive_reference", resolve=_missing_or_uses_a_problem
    ),
    "required": Failure(recoverable=False, reason="required_field"),
    "invalid_reference": Failure(
        recoverable=False, reason="invalid_reference", resolve=_uses_a_problem
    ),
    "permission": Failure(recoverable=False, reason="permission"),
    "validation": Failure(recoverable=False, reason="validation", resolve=_refused_data),
    "internal": Failure(recoverable=False, reason="internal"),
    # QuickBooks refused an uploaded file itself (its type, its size).
    "attachment_refused": Failure(recoverable=False, reason="attachment_refused"),
}


def settle_failure(ctx: SyncContext, claim: Claim, write: Write | None, exc: Exception) -> str:
    """Every failure of a claimed record ends here and leaves it in a state with a reason."""
    for kind, handler in _BY_EXCEPTION:
        if isinstance(exc, kind):
            return handler(ctx, claim, write, exc)
    logger.exception(
        "unexpected failure pushing %s %s", claim.mapper.sync_type, claim.record.pk, exc_info=exc
    )
    error = QboError("internal", f"{exc.__class__.__name__}: {exc}")
    attempt_row(claim, write, SyncAttempt.Outcome.PROBLEM, error, ctx._session).save()
    return settle_problem(claim, "internal", error)


def _mapping_problem(
    ctx: SyncContext, claim: Claim, write: Write | None, exc: MappingProblem
) -> str:
    error = QboError("mapping", exc.message)
    attempt_row(claim, write, SyncAttempt.Outcome.PROBLEM, error, ctx._session).save()
    return settle_problem(claim, exc.reason, None, exc.message)


def _dependency_wait(
    ctx: SyncContext, claim: Claim, write: Write | None, exc: DependencyWait
) -> str:
    return release(claim, str(exc), delay=15)


def _not_connected(ctx: SyncContext, claim: Claim, write: Write | None, exc: NeedsReconnect) -> str:
    error = QboError("reconnect", str(exc))
    attempt_row(claim, write, SyncAttempt.Outcome.WAITING, error, ctx._session).save()
    return release(claim, "Waiting: QuickBooks needs reconnecting.")


def _quickbooks_failure(
    ctx: SyncContext, claim: Claim, write: Write | None, error: QboError
) -> str:
    failure = FAILURES.get(error.kind, FAILURES["validation"])
    if failure.recoverable:
        return _retry(ctx, claim, write, error, failure)
    attempt_row(claim, write, SyncAttempt.Outcome.PROBLEM, error, ctx._session).save()
    if write is None:
        return settle_problem(claim, "internal", error)
    try:
        outcome = failure.resolve(ctx, claim, write, error) if failure.resolve else None
    except Exception as second:  # noqa: BLE001 - the fix-up itself failed: classify that
        return _fix_up_failed(ctx, claim, second)
    return outcome or settle_problem(claim, failure.reason, error)


# Refusals that say "not now" rather than "not this": the record waits, spending no attempt.
_WAITS = {"throttle", "reads_refused"}


def _retry(
    ctx: SyncContext, claim: Claim, write: Write | None, error: QboError, failure: Failure
) -> str:
    if error.kind in _WAITS:
        delay = error.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS
        if error.code != "budget":  # our own limiter sent nothing: no attempt to record
            attempt_row(claim, write, SyncAttempt.Outcome.RETRY, error, ctx._session).save()
        return settle_retry(claim, error, counted=False, delay=delay)
    if write is not None and write.op == "create" and error.ambiguous:
        claim.lookup_first = True
    attempt_row(claim, write, SyncAttempt.Outcome.RETRY, error, ctx._session).save()
    return settle_retry(claim, error, counted=failure.counted)


def _fix_up_failed(ctx: SyncContext, claim: Claim, second: Exception) -> str:
    if (
        isinstance(second, QboError)
        and FAILURES.get(second.kind, FAILURES["validation"]).recoverable
    ):
        throttled = second.kind in _WAITS
        delay = (second.retry_after or settings.QBO_THROTTLE_BACKOFF_SECONDS) if throttled else None
        return settle_retry(claim, second, counted=not throttled, delay=delay)
    return settle_failure(ctx, claim, None, second)


_BY_EXCEPTION: list[tuple[type[Exception], Callable[..., str]]] = [
    (MappingProblem, _mapping_problem),
    (DependencyWait, _dependency_wait),
    (NeedsReconnect, _not_connected),
    (QboError, _quickbooks_failure),
]


# --- attempts (the audit of every call) ------------------------------------------------------


def attempt_row(
    claim: Claim,
    write: Write | None,
    outcome: str,
    error: QboError | None,
    session: QuickBooksSession | None,
    operation: str | None = None,
) -> SyncAttempt:
    message = ""
    if error:
        message = (error.message + (f" — {error.detail}" if error.detail else ""))[:2000]
    return SyncAttempt(
        record_type=claim.mapper.sync_type,
        record_id=claim.record.pk,
        record_version=claim.version,
        operation=operation or (write.op if write else "prepare"),
        request_id=write.rid if write else "",
        outcome=outcome,
        http_status=(error.http_status if error else None)
        or (session.last_status if session else None),
        fault_code=error.code if error else "",
        message=message,
        duration_ms=session.last_duration_ms if session else 0,
        payload=write.body if write else {},
    )


def classify_fault(fault: dict[str, Any]) -> QboError:
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


# --- services ------------------------------------------------------------------------------


def push_claimed(ctx: SyncContext, mapper: Mapper[Any], record: SyncedRecord) -> str:
    claimed = claim(mapper, record)
    if claimed is None:
        return "not-claimed"
    return execute(ctx, claimed)


def skip_disabled(*, sync_type: str, pks: Iterable[int]) -> int:
    return move(
        MAPPERS[sync_type].model.objects.filter(pk__in=pks),
        S.SKIPPED,
        how="type_off",
        sources=CLAIMABLE,
        next_retry_at=None,
        last_error_code=SYNC_OFF_CODE,  # switching the type on again brings these back
        last_error_message="Sync of this record type is switched off in Finance settings.",
    )


def push_record(*, sync_type: str, pk: int, trigger: str = "sweep") -> str:
    """Push one record now (push on change, re-sync, a due retry)."""
    mapper = MAPPERS[sync_type]
    record = mapper.load([pk]).first()
    if record is None:
        return "missing"
    ctx = SyncContext.for_company(record.company_id)
    if trigger == "change" and not ctx.settings.push_on_change:
        return "scheduled"
    if not ctx.type_allowed(mapper):
        skip_disabled(sync_type=sync_type, pks=[pk])
        return "skipped"
    if not ctx.usable:
        release_dispatched(mapper.model, [pk])
        return "waiting"
    return push_claimed(ctx, mapper, record)


def release_dispatched(model: type[SyncedRecord], pks: list[int]) -> int:
    """QuickBooks cannot be reached (not connected, or it needs reconnecting): the sweep's
    dispatch stamp goes, so the records are due at the first sweep after the reconnect, not
    when the lease would have passed."""
    return move(
        model.objects.filter(pk__in=pks, next_retry_at__isnull=False),
        S.PENDING,
        how="waiting_connection",
        sources=[S.PENDING],
        next_retry_at=None,
    )


def defer_dispatched(model: type[SyncedRecord], pks: list[int], seconds: float) -> int:
    """The realm's budget was spent by the time these dispatched records reached a worker:
    they stay pending, due again when it frees, without being claimed or planned."""
    return move(
        model.objects.filter(pk__in=pks, next_retry_at__isnull=False),
        S.PENDING,
        how="budget_spent",
        sources=[S.PENDING],
        next_retry_at=timezone.now() + timedelta(seconds=seconds),
    )


def due_queryset(model: type[SyncedRecord], *, now: datetime | None = None) -> QuerySet[Any]:
    # Rows typed Any: callers filter on the concrete type's own fields (its company).
    now = now or timezone.now()
    return model.objects.filter(
        Q(sync_status=S.PENDING, next_retry_at__isnull=True)
        | Q(sync_status=S.PENDING, next_retry_at__lte=now)
        | Q(sync_status=S.RETRY_WAIT, next_retry_at__lte=now)
    )


def reclaim_expired_leases() -> int:
    """A worker died mid-push: its records go back to PENDING, marked for a look-up first."""
    total = 0
    for mapper in MAPPERS.values():
        total += move(
            mapper.model.objects.filter(lease_expires_at__lt=timezone.now()),
            S.PENDING,
            how="lease_expired",
            sources=[S.IN_FLIGHT],
            lease_expires_at=None,
            next_retry_at=None,
            create_uncertain=Case(When(qb_id="", then=Value(True)), default=F("create_uncertain")),
            last_error_message="The worker stopped mid-push; checked and retried.",
        )
    if total:
        logger.warning("returned %s expired in-flight records to pending", total)
    return total
