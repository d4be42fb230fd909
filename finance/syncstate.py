"""The one sync state machine shared by every record type (DESIGN.md, "Sync state machine")."""

from django.db import models


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

# Every allowed move. Anything else is a bug and is refused by `check_transition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.IN_FLIGHT, S.SKIPPED, S.PENDING, S.PROBLEM}),
    S.IN_FLIGHT: frozenset({S.SYNCED, S.RETRY_WAIT, S.PROBLEM, S.PENDING}),
    S.SYNCED: frozenset({S.PENDING, S.PROBLEM}),
    S.RETRY_WAIT: frozenset({S.IN_FLIGHT, S.PENDING, S.PROBLEM, S.SKIPPED}),
    S.PROBLEM: frozenset({S.PENDING, S.CLEARED, S.PAID_OUTSIDE, S.SKIPPED}),
    S.CLEARED: frozenset({S.PENDING, S.PROBLEM}),
    S.PAID_OUTSIDE: frozenset({S.PENDING}),
    S.SKIPPED: frozenset({S.PENDING}),
}

# Records QuickBooks still owes us a write for: nothing in these states may be forgotten.
OWED = frozenset({S.PENDING, S.IN_FLIGHT, S.RETRY_WAIT})
# States the sweep may claim from.
CLAIMABLE = frozenset({S.PENDING, S.RETRY_WAIT})


class InvalidTransition(ValueError):
    pass


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, ()):
        raise InvalidTransition(f"sync status cannot go from {current} to {target}")
