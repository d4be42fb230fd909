"""Charge code ↔ QuickBooks Item mapping (Finance → QuickBooks page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from finance.models import ChargeCode, Company, ManualAction
from finance.syncstate import SyncStatus, move, transition
from finance.validators import validate_qb_id
from sync.services.batch import push_batch
from sync.services.engine import SyncContext
from sync.services.verify import qb_object_exists
from sync.services.waiting import requeue_waiting_on

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def items_list(*, company: Company) -> list[dict[str, Any]]:
    """Active and inactive service items, read from QuickBooks."""
    ctx = SyncContext.for_company(company.pk)
    rows = ctx.session.query("SELECT * FROM Item ORDERBY Name MAXRESULTS 1000")
    return [
        {"id": row["Id"], "name": row.get("Name", ""), "active": row.get("Active", True)}
        for row in rows
    ]


def item_map(*, charge_code: ChargeCode, item_id: str, user: User | None) -> ChargeCode:
    """Point a charge code at an existing QuickBooks item ("" unmaps it).

    The item is checked in QuickBooks first (outside any transaction), like support's QB ID
    override: an Id that is not an active Item there (999999, a credit memo's Id) is refused
    instead of being marked synced."""
    item_id = (item_id or "").strip()
    if item_id:
        validate_qb_id(item_id)
        _refuse_taken(charge_code, item_id)
        exists, message = qb_object_exists(record=charge_code, qb_id=item_id)
        if not exists:
            raise ValidationError(message)
    with transaction.atomic():
        code = ChargeCode.objects.select_for_update().get(pk=charge_code.pk)
        if item_id:
            _refuse_taken(code, item_id)  # again, under the lock
            target, fields = SyncStatus.SYNCED, {"synced_version": code.version}
        else:
            if not code.qb_id and code.sync_status == SyncStatus.SKIPPED:
                return code  # not mapped: nothing to undo
            target, fields = SyncStatus.SKIPPED, {}
        code = transition(
            code,
            target,
            how="mapped",
            user=user,
            audit=ManualAction.Kind.LINK,
            note=f"Charge code {code.code} mapped to item {item_id or '(none)'}",
            qb_id=item_id,
            qb_sync_token="",
            problem_reason="",
            **fields,
        )
        if target == SyncStatus.SYNCED:
            requeue_waiting_on(code)
        return code


def _refuse_taken(code: ChargeCode, item_id: str) -> None:
    clash = (
        ChargeCode.objects.filter(company_id=code.company_id, qb_id=item_id)
        .exclude(pk=code.pk)
        .first()
    )
    if clash:
        raise ValidationError(f"Item {item_id} is already mapped to charge code {clash.code}.")


def items_create_missing(*, company: Company, user: User | None) -> dict[str, int]:
    """Create a QuickBooks service item for every unmapped charge code (linking same names)."""
    ManualAction.objects.create(
        kind=ManualAction.Kind.LINK,
        record_type="item",
        user=user,
        note="Create missing items for the unmapped charge codes",
    )
    return items_send(codes=ChargeCode.objects.filter(company=company, is_active=True))


def items_send(*, codes: QuerySet[ChargeCode]) -> dict[str, int]:
    """Send these charge codes (those without an item yet) to QuickBooks as items, now."""
    unmapped = codes.filter(qb_id="")
    pks = list(unmapped.values_list("pk", flat=True))
    move(unmapped, SyncStatus.PENDING, how="send_items", next_retry_at=None, attempts=0)
    return push_batch(sync_type="item", pks=pks) if pks else {}
