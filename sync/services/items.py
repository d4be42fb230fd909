"""Charge code ↔ QuickBooks Item mapping (Finance → QuickBooks page)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from finance.models import ChargeCode, ManualAction
from finance.syncstate import SyncStatus
from finance.validators import validate_qb_id
from sync.services.engine import SyncContext, push_batch
from sync.services.verify import qb_object_exists


def items_list(*, company) -> list[dict]:
    """Active and inactive service items, read from QuickBooks."""
    ctx = SyncContext.for_company(company.pk)
    rows = ctx.session.query("SELECT * FROM Item ORDERBY Name MAXRESULTS 1000")
    return [
        {"id": row["Id"], "name": row.get("Name", ""), "active": row.get("Active", True)}
        for row in rows
    ]


def item_map(*, charge_code: ChargeCode, item_id: str, user) -> ChargeCode:
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
        before = {"qb_id": code.qb_id, "sync_status": code.sync_status}
        if item_id:
            _refuse_taken(code, item_id)  # again, under the lock
            code.qb_id, code.qb_sync_token = item_id, ""
            code.sync_status, code.synced_version = SyncStatus.SYNCED, code.version
        else:
            code.qb_id, code.qb_sync_token, code.sync_status = "", "", SyncStatus.SKIPPED
        code.problem_reason = ""
        code.save()
        ManualAction.objects.create(
            kind=ManualAction.Kind.LINK,
            record_type="item",
            record_id=code.pk,
            user=user,
            before=before,
            after={"qb_id": code.qb_id, "sync_status": code.sync_status},
            note=f"Charge code {code.code} mapped to item {item_id or '(none)'}",
        )
    return code


def _refuse_taken(code: ChargeCode, item_id: str) -> None:
    clash = (
        ChargeCode.objects.filter(company_id=code.company_id, qb_id=item_id)
        .exclude(pk=code.pk)
        .first()
    )
    if clash:
        raise ValidationError(f"Item {item_id} is already mapped to charge code {clash.code}.")


def items_create_missing(*, company, user) -> dict[str, int]:
    """Create a QuickBooks service item for every unmapped charge code (linking same names)."""
    unmapped = ChargeCode.objects.filter(company=company, qb_id="", is_active=True)
    pks = list(unmapped.values_list("pk", flat=True))
    unmapped.update(sync_status=SyncStatus.PENDING, next_retry_at=None, attempts=0)
    ManualAction.objects.create(
        kind=ManualAction.Kind.LINK,
        record_type="item",
        user=user,
        note=f"Create missing items for {len(pks)} charge codes",
    )
    return push_batch(sync_type="item", pks=pks) if pks else {}
