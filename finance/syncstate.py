"""The one sync state machine shared by every record type (DESIGN.md, "Sync state machine").

`MOVES` lists every allowed change of `sync_status` with the reason it exists. Every writer of
`sync_status` (engine, sweep, pull, Problem Sync actions, finance services, QuickBooks ID
changes) goes through `move()` (a conditional UPDATE of a queryset, the engine's claims and
settlements) or `transition()` (one record, checked, with an optional audit row), which:
- restrict the update to rows whose current state may make the move (nothing else changes);
- announce records entering or leaving PROBLEM (`problem_changed`; sync stores ProblemEvent
  rows from it: the trend chart and "recently resolved"), in the same transaction;
- write the ManualAction audit row for a person's move.
tests/finance/test_syncstate.py fails when code anywhere writes `sync_status` around them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models, transaction
from django.dispatch import Signal

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models import QuerySet

    from finance.models import SyncedRecord

RecordT = TypeVar("RecordT", bound="SyncedRecord")


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    SYNCED = "synced", "Synced"
    RETRY_WAIT = "retry_wait", "Waiting to retry"
    PROBLEM = "problem", "Problem"
    CLEARED = "cleared", "Cleared without sync"
    PAID_OUTSIDE = "paid_outside", "Marked paid without sync"
    SKIPPED = "skipped", "Skipped (sync off)"


S = SyncStatus

# Every allowed move and why the product needs it. Anything else is a bug and is refused.
MOVES: dict[tuple[str, str], str] = {
    (S.PENDING, S.IN_FLIGHT): "a worker claims it",
    (S.RETRY_WAIT, S.IN_FLIGHT): "its retry is due and a worker claims it",
    (S.IN_FLIGHT, S.SYNCED): "QuickBooks accepted it (or we linked an existing object)",
    (S.IN_FLIGHT, S.RETRY_WAIT): "a transient failure: it goes again after a back-off",
    (S.IN_FLIGHT, S.PROBLEM): "a failure a person has to look at",
    (S.IN_FLIGHT, S.PENDING): "changed while in flight, waiting on a dependency or the "
    "connection, or its worker died (expired lease)",
    (S.IN_FLIGHT, S.SKIPPED): "nothing to send: a draft, or its type was switched off",
    (S.PENDING, S.PENDING): "changed again, or stamped by the sweep that dispatched it",
    (S.PENDING, S.SKIPPED): "its type was switched off, or a charge code starts unmapped",
    (S.PENDING, S.PROBLEM): "QuickBooks deleted or voided it before our change went out",
    (S.PENDING, S.SYNCED): "linked to an existing QuickBooks object (a payment recorded "
    "from QuickBooks, a charge code mapped to an item, a QuickBooks ID set by support)",
    (S.RETRY_WAIT, S.PENDING): "changed, re-synced or unlinked while waiting",
    (S.RETRY_WAIT, S.SKIPPED): "its type was switched off",
    (S.RETRY_WAIT, S.PROBLEM): "QuickBooks deleted or voided it while we waited",
    (S.RETRY_WAIT, S.SYNCED): "linked to an existing QuickBooks object by support",
    (S.SYNCED, S.PENDING): "changed in the TMS, or its QuickBooks ID removed",
    (S.SYNCED, S.PROBLEM): "deleted or voided in QuickBooks",
    (S.SYNCED, S.SYNCED): "pointed at another existing QuickBooks object by support",
    (S.SYNCED, S.SKIPPED): "a charge code unmapped (a new QuickBooks company, or by finance)",
    (S.PROBLEM, S.PENDING): "re-synced, changed, or unlinked",
    (S.PROBLEM, S.CLEARED): "cleared without sync",
    (S.PROBLEM, S.PAID_OUTSIDE): "marked paid without sync (paid in QuickBooks)",
    (S.PROBLEM, S.SKIPPED): "its type was switched off, or a charge code unmapped",
    (S.PROBLEM, S.SYNCED): "linked to an existing QuickBooks object (mapping, support)",
    (S.CLEARED, S.PENDING): "changed, or unlinked",
    (S.CLEARED, S.PROBLEM): "a clear undone",
    (S.CLEARED, S.SYNCED): "linked to an existing QuickBooks object by support",
    (S.CLEARED, S.SKIPPED): "a cleared charge code unmapped",
    (S.PAID_OUTSIDE, S.PENDING): "changed, or unlinked",
    (S.PAID_OUTSIDE, S.PROBLEM): "deleted or voided in QuickBooks",
    (S.PAID_OUTSIDE, S.SYNCED): "linked to an existing QuickBooks object by support",
    (S.SKIPPED, S.PENDING): "its type switched on again, changed, or sent on request",
    (S.SKIPPED, S.SYNCED): "a charge code mapped to an existing item, or linked by support",
    (S.SKIPPED, S.PROBLEM): "deleted or voided in QuickBooks while its type was off",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    state: frozenset(target for source, target in MOVES if source == state) for state in S
}

# last_error_code of a record skipped because its type was switched off in Finance settings:
# switching the type on again puts exactly these back in the queue.
SYNC_OFF_CODE = "sync_off"

# A record starting its attempts anew (a re-sync, a fix, a dependency now in QuickBooks): the
# old failure's budget, wait, reason and message go; its attempt rows keep the history.
FRESH_START: dict[str, Any] = {
    "attempts": 0,
    "next_retry_at": None,
    "problem_reason": "",
    "problem_since": None,
    "last_error_code": "",
    "last_error_message": "",
}

# Records QuickBooks still owes us a write for: nothing in these states may be forgotten.
OWED = frozenset({S.PENDING, S.IN_FLIGHT, S.RETRY_WAIT})
# States the sweep may claim from.
CLAIMABLE = frozenset({S.PENDING, S.RETRY_WAIT})

# Sent inside the transaction with `record_type`, `opened=[(pk, reason, company_id), ...]` and
# `resolved=[(pk, reason, company_id), ...]`, `how` (why it left PROBLEM) and `user`. sync
# stores them.
problem_changed = Signal()


class InvalidTransition(ValueError):
    pass


def check_transition(current: str, target: str) -> None:
    if (current, target) not in MOVES:
        raise InvalidTransition(f"sync status cannot go from {current} to {target}")


def sources_for(target: str, among: Collection[str] | None = None) -> list[str]:
    """The states a record may leave for `target` (optionally only those in `among`)."""
    return [s for (s, t) in MOVES if t == target and (among is None or s in among)]


def move(
    queryset: QuerySet[SyncedRecord],
    target: str,
    *,
    how: str,
    sources: Collection[str] | None = None,
    user: User | None = None,
    **fields: Any,
) -> int:
    """Conditional UPDATE: the rows of `queryset` whose state may move to `target` (and is in
    `sources`, when given) take it, with `fields`. Returns how many moved.

    Entering or leaving PROBLEM is announced for exactly the rows that moved (they are locked
    and read first; only problem moves pay that extra query)."""
    allowed = sources_for(target, sources)
    if len(allowed) == 1:  # the engine's settles: the plainest WHERE, on its hottest path
        candidates = queryset.filter(sync_status=allowed[0])
    else:
        candidates = queryset.filter(sync_status__in=allowed)
    opening = target == S.PROBLEM
    resolving = S.PROBLEM in allowed and target != S.PROBLEM
    if not (opening or resolving):
        return candidates.update(sync_status=target, **fields)
    with transaction.atomic():
        locked: QuerySet[Any] = candidates.select_for_update()  # each concrete type's company
        rows = list(locked.values_list("pk", "sync_status", "problem_reason", "company_id"))
        moved = candidates.filter(pk__in=[row[0] for row in rows]).update(
            sync_status=target, **fields
        )
        if moved:
            _announce(queryset.model, rows, target, how=how, user=user, fields=fields)
    return moved


def transition(
    record: RecordT,
    target: str,
    *,
    how: str,
    user: User | None = None,
    audit: str | None = None,
    note: str = "",
    **fields: Any,
) -> RecordT:
    """Move one record (its caller holds its row lock) from the state it was read in: refused
    with InvalidTransition when the table has no such move, or when it changed meanwhile.
    With `audit` (a ManualAction kind) the person's move is written to the audit log."""
    current, reason = record.sync_status, record.problem_reason
    check_transition(current, target)
    model = type(record)
    before = _snapshot(record) if audit else {}
    with transaction.atomic():
        moved = model.objects.filter(pk=record.pk, sync_status=current).update(
            sync_status=target, **fields
        )
        if not moved:
            raise InvalidTransition(f"{record} changed while it was being moved; try again")
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(record, name, value)
        record.sync_status = target
        if any(hasattr(v, "resolve_expression") for v in fields.values()):
            record.refresh_from_db(fields=list(fields))
        _announce(
            model,
            [(record.pk, current, reason, record.company_id)],
            target,
            how=how,
            user=user,
            fields=fields,
        )
        if audit:
            from finance.audit import manual_action_record

            manual_action_record(kind=audit, record=record, user=user, before=before, note=note)
    return record


def _snapshot(record: SyncedRecord) -> dict[str, Any]:
    from finance.audit import sync_snapshot

    before = sync_snapshot(record)
    if hasattr(record, "status"):
        before["status"] = record.status
    return before


def _announce(
    model: type[SyncedRecord],
    rows: list[tuple[int, str, str, int]],
    target: str,
    *,
    how: str,
    user: User | None,
    fields: dict[str, Any],
) -> None:
    """rows: (pk, state before, problem reason before, company) of the records that moved."""
    if target == S.PROBLEM:
        opened = [(pk, fields.get("problem_reason") or why, co) for pk, _, why, co in rows]
        resolved = []
    else:
        opened = []
        resolved = [(pk, why, co) for pk, state, why, co in rows if state == S.PROBLEM]
    if opened or resolved:
        problem_changed.send(
            sender=model, record_type=model.sync_type, opened=opened, resolved=resolved,
            how=how, user=user,
        )  # fmt: skip
