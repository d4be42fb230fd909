"""What someone changed in QuickBooks since our last write, in the fields we own.

A 5010 (stale SyncToken) means QuickBooks holds a version we have not seen. Before a push goes
on top of it, the copy QuickBooks holds now is compared with what we last wrote there (the body
of our last accepted write, kept on its SyncAttempt row). The fields we own are the fields we
send; anything else (a memo, a phone number we never had, a payment lowering the balance) is
QuickBooks' own and never stops a push. A void or a change to an owned field does: the record
becomes a problem showing both versions, and a person chooses. Nothing is written over silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from finance.models import SyncedRecord
from sync.models import SyncAttempt
from sync.services.client import QboObject

# Envelope keys of a write: not data anyone edits.
_ENVELOPE = frozenset({"Id", "SyncToken", "sparse", "MetaData", "domain", "LineNum"})
# A SyncAttempt operation: QuickBooks' version taken into the TMS, nothing sent; its payload is
# QuickBooks' copy in the shape of our write, the new "last write" to compare with.
ACCEPTED = "accept"
# QuickBooks adds a subtotal line to every sales transaction it answers with.
_ADDED_LINE_TYPES = frozenset({"SubTotalLineDetail"})


def deleted(obj: QboObject) -> bool:
    return obj.get("status") == "Deleted"


def voided(obj: QboObject) -> bool:
    """How QuickBooks shows a voided sales transaction: amounts zeroed, a "Voided" note."""
    return obj.get("PrivateNote") == "Voided" and Decimal(str(obj.get("TotalAmt") or 0)) == 0


@dataclass(frozen=True)
class Change:
    field: str  # "Line 2 Amount", "CustomerRef"
    ours: str  # what we last wrote
    theirs: str  # what QuickBooks holds now


@dataclass
class Drift:
    """QuickBooks' version `token` against our last write; empty when nothing we own moved."""

    token: str
    voided: bool = False
    changes: list[Change] = field(default_factory=list)
    known: bool = True  # False: no copy of our last write (linked, or synced before we kept it)

    def __bool__(self) -> bool:
        return self.voided or bool(self.changes) or not self.known

    @property
    def reason(self) -> str:
        return "voided_in_quickbooks" if self.voided else "changed_in_quickbooks"

    def summary(self) -> str:
        if self.voided:
            return f"Voided in QuickBooks after our last write (QuickBooks version {self.token})."
        if not self.known:
            return (
                f"Changed in QuickBooks (version {self.token}); we hold no copy of our last "
                "write to compare with."
            )
        listed = "; ".join(f"{c.field}: ours {c.ours}, QuickBooks {c.theirs}" for c in self.changes)
        return f"Changed in QuickBooks after our last write — {listed}"[:2000]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def last_write(*, sync_type: str, record_id: int) -> SyncAttempt | None:
    """Our last write QuickBooks accepted for this record (its body is what we own there)."""
    return (
        SyncAttempt.objects.filter(
            record_type=sync_type,
            record_id=record_id,
            outcome=SyncAttempt.Outcome.OK,
            operation__in=["create", "update", "void", ACCEPTED],
        )
        .order_by("-started_at", "-id")
        .first()
    )


def keep_as_last_write(
    *, record: SyncedRecord, current: QboObject, ours: dict[str, Any], message: str
) -> SyncAttempt:
    """QuickBooks' copy, in the shape of our write, becomes the last write to compare with (the
    TMS took it, or was linked to it as it is): nothing was sent, the attempt says so."""
    return SyncAttempt.objects.create(
        record_type=record.sync_type,
        record_id=record.pk,
        record_version=record.version,
        operation=ACCEPTED,
        outcome=SyncAttempt.Outcome.OK,
        message=message,
        payload=shaped_like(current, ours),
    )


def drift_since_last_write(*, sync_type: str, record_id: int, current: QboObject) -> Drift:
    token = str(current.get("SyncToken", ""))
    last = last_write(sync_type=sync_type, record_id=record_id)
    if last is None or not last.payload:
        return Drift(token=token, voided=voided(current), known=False)
    if last.operation == "void":  # we voided it: QuickBooks showing it voided is ours
        return Drift(token=token)
    if voided(current):
        return Drift(token=token, voided=True)
    return Drift(token=token, changes=differences(last.payload, current))


def shaped_like(theirs: Any, ours: Any) -> Any:
    """QuickBooks' copy cut to the shape of our write (the keys we send; not what QuickBooks adds,
    such as Balance or MetaData), so a later comparison looks at the fields we own."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return {key: shaped_like(theirs[key], mine) for key, mine in ours.items() if key in theirs}
    if isinstance(ours, list) and isinstance(theirs, list):
        template = ours[0] if ours else None
        return [
            shaped_like(item, template) if template is not None else item
            for item in theirs
            if not (isinstance(item, dict) and item.get("DetailType") in _ADDED_LINE_TYPES)
        ]
    return theirs


def merged(last: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Three ways: QuickBooks' value where QuickBooks changed it since our last write (`last`),
    ours (what the TMS would send now) everywhere else, so the TMS's own edits since then stay.
    Lines are one value: QuickBooks' lines when it changed any of them."""
    result = dict(theirs)
    for key in (set(ours) | set(last)) - _ENVELOPE:
        before, mine, other = last.get(key), ours.get(key), theirs.get(key)
        if (
            isinstance(before, dict)
            and isinstance(mine, dict)
            and isinstance(other, dict)
            and not key.endswith("Ref")
        ):
            result[key] = merged(before, mine, other)
        elif key in last and not differences({key: before}, {key: other}):
            if key in ours:  # QuickBooks kept our last value: the TMS's value now goes
                result[key] = mine
            else:
                result.pop(key, None)
        elif key not in last and key not in theirs:  # the TMS added it since
            result[key] = mine
    return result


def differences(ours: dict[str, Any], theirs: dict[str, Any], path: str = "") -> list[Change]:
    """Where `theirs` disagrees with `ours`, looking only at the keys `ours` has."""
    changes: list[Change] = []
    for key, mine in ours.items():
        if key in _ENVELOPE:
            continue
        label, other = f"{path}{key}", theirs.get(key)
        if isinstance(mine, dict):
            if key.endswith("Ref"):  # a reference is its id; the name beside it is a label
                mine, other = mine.get("value"), (other or {}).get("value")
            elif isinstance(other, dict):
                changes += differences(mine, other, f"{label} ")
                continue
        elif isinstance(mine, list):
            changes += _list_differences(label, mine, other)
            continue
        if not _same(mine, other):
            changes.append(Change(label, _shown(mine), _shown(other)))
    return changes


def _list_differences(label: str, mine: list[Any], other: Any) -> list[Change]:
    items = [
        item
        for item in (other if isinstance(other, list) else [])
        if not (isinstance(item, dict) and item.get("DetailType") in _ADDED_LINE_TYPES)
    ]
    if len(items) != len(mine):
        return [Change(label, f"{len(mine)} lines", f"{len(items)} lines")]
    changes: list[Change] = []
    for number, (a, b) in enumerate(zip(mine, items, strict=True), 1):
        if isinstance(a, dict) and isinstance(b, dict):
            changes += differences(a, b, f"{label} {number} ")
        elif not _same(a, b):
            changes.append(Change(f"{label} {number}", _shown(a), _shown(b)))
    return changes


def _same(a: Any, b: Any) -> bool:
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float | Decimal) or isinstance(b, int | float | Decimal):
        try:
            return Decimal(str(a)) == Decimal(str(b))
        except InvalidOperation:
            return False
    return str(a).strip() == str(b).strip()


def _shown(value: Any) -> str:
    if value in (None, ""):
        return "(empty)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"
