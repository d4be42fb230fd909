"""Support's QuickBooks ID area: remove or override the ID a record points at.

Both operations are dangerous (duplicates or orphans in QuickBooks), need the permission
`finance.override_qb_id`, and write a ManualAction with the state before and after.

The existence check against QuickBooks lives in sync/ (finance never imports sync): it is
loaded by dotted path from `settings.QB_ID_VERIFIER`, a callable
`(*, record, qb_id) -> tuple[bool, str]`. It runs *before* the row lock is taken, so no lock is
held during a network call; the lock then re-checks everything that could have changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.module_loading import import_string

from finance.audit import manual_action_record, sync_snapshot
from finance.models import ManualAction, SyncedRecord
from finance.registry import record_type_of
from finance.services import record_mark_changed
from finance.syncstate import FRESH_START, SyncStatus, transition
from finance.validators import validate_qb_id

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

RecordT = TypeVar("RecordT", bound=SyncedRecord)
logger = logging.getLogger(__name__)
PERMISSION = "finance.override_qb_id"


def user_can_change_qb_ids(user: User | AnonymousUser | None) -> bool:
    return bool(user and user.is_active and user.has_perm(PERMISSION))


def record_label(record: SyncedRecord) -> str:
    """'Invoice INV-10001', 'Customer Pacific Freight Co', 'Charge code DRAY · Drayage'…"""
    return record_type_of(record).titled_label(record)


def _require_permission(user: User | None) -> None:
    if not user_can_change_qb_ids(user):
        raise PermissionDenied("Only support can remove or override QuickBooks IDs.")


def _lock(record: RecordT) -> RecordT:
    locked = type(record).objects.select_for_update().get(pk=record.pk)
    if locked.sync_status == SyncStatus.IN_FLIGHT:
        raise ValidationError(
            f"{record_label(locked)} is being sent to QuickBooks right now. "
            "Wait a minute and try again."
        )
    return locked


@transaction.atomic
def qb_id_remove(*, record: RecordT, user: User | None, note: str = "") -> RecordT:
    """Forget the QuickBooks ID: the record becomes PENDING and is created again on next sync."""
    _require_permission(user)
    record = _lock(record)
    if not record.qb_id:
        raise ValidationError(f"{record_label(record)} has no QuickBooks ID to remove.")
    before = sync_snapshot(record)
    type(record).objects.filter(pk=record.pk).update(qb_id="", qb_sync_token="", synced_version=0)
    record_mark_changed(record=record)
    record.refresh_from_db()
    manual_action_record(
        kind=ManualAction.Kind.QB_ID_REMOVE, record=record, user=user, before=before, note=note
    )
    return record


def _verify(*, record: SyncedRecord, qb_id: str) -> str:
    """Ask QuickBooks (through sync/) whether the object exists; returns a note for the audit."""
    path = getattr(settings, "QB_ID_VERIFIER", "")
    if not path:
        return "QuickBooks check skipped: no QB_ID_VERIFIER configured."
    try:
        verifier = import_string(path)
    except ImportError:
        return f"QuickBooks check skipped: {path} could not be loaded."
    try:
        exists, message = verifier(record=record, qb_id=qb_id)
    except Exception as exc:  # noqa: BLE001 - a failed check must refuse, not crash the admin
        raise ValidationError(
            f"Could not check QuickBooks ID {qb_id} in QuickBooks ({exc.__class__.__name__}: "
            f"{exc}). Try again when QuickBooks is reachable."
        )
    if not exists:
        raise ValidationError(message or f"QuickBooks has no object with ID {qb_id}.")
    return f"Checked in QuickBooks: {message}" if message else "Checked in QuickBooks."


def refuse_taken_qb_id(*, record: SyncedRecord, qb_id: str) -> None:
    """No two records of one type may point at the same QuickBooks object."""
    other = (
        type(record)
        .objects.filter(company_id=record.company_id, qb_id=qb_id)
        .exclude(pk=record.pk)
        .first()
    )
    if other is not None:
        raise ValidationError(f"QuickBooks ID {qb_id} already belongs to {record_label(other)}.")


def qb_id_override(
    *,
    record: RecordT,
    new_qb_id: object,
    user: User | None,
    note: str = "",
    verify: bool = True,
) -> RecordT:
    """Point the record at an existing QuickBooks object: SYNCED at its current version."""
    _require_permission(user)
    try:
        qb_id = str(new_qb_id).strip()
        validate_qb_id(qb_id)
        qb_id = str(int(qb_id))  # "0042" and "42" are the same object
        refuse_taken_qb_id(record=record, qb_id=qb_id)
        checked = (
            _verify(record=record, qb_id=qb_id)
            if verify
            else "QuickBooks check skipped on request."
        )
        return _apply_override(record=record, qb_id=qb_id, user=user, note=note, checked=checked)
    except ValidationError as exc:
        # Nothing changed, so there is no ManualAction: the log keeps who tried what.
        logger.warning(
            "QuickBooks ID override refused for %s (by %s, ID %r): %s",
            record_label(record),
            getattr(user, "username", user),
            str(new_qb_id)[:40],
            " ".join(exc.messages),
        )
        raise


@transaction.atomic
def _apply_override(
    *, record: RecordT, qb_id: str, user: User | None, note: str, checked: str
) -> RecordT:
    record = _lock(record)
    refuse_taken_qb_id(record=record, qb_id=qb_id)  # again, under the lock
    # A manual move: the record now mirrors an existing object, whatever state it was in.
    return transition(
        record,
        SyncStatus.SYNCED,
        how="qb_id_override",
        user=user,
        audit=ManualAction.Kind.QB_ID_OVERRIDE,
        note=" ".join(part for part in (note.strip(), f"[{checked}]") if part),
        qb_id=qb_id,
        qb_sync_token="",
        synced_version=record.version,
        **FRESH_START,
    )
