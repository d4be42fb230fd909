"""TMS codes mapped to QuickBooks objects (Finance → QuickBooks page): charge codes → Items,
pay codes → expense Accounts. One spec per mapped type; the services below serve both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from finance.models import ChargeCode, Company, ManualAction, PayCode
from finance.syncstate import SyncStatus, move, transition
from finance.validators import validate_qb_id
from sync.services import usage
from sync.services.batch import push_batch
from sync.services.engine import SyncContext
from sync.services.verify import qb_object_exists
from sync.services.waiting import requeue_waiting_on

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Code = ChargeCode | PayCode


@dataclass(frozen=True)
class MappedType:
    sync_type: str
    model: type[ChargeCode] | type[PayCode]
    entity: str  # the QuickBooks entity a code maps to
    code_noun: str  # "charge code"
    target_noun: str  # "item"
    list_query: str  # what the card offers to map to (one read when it opens)


MAPPED: dict[str, MappedType] = {
    "item": MappedType(
        "item",
        ChargeCode,
        "Item",
        "charge code",
        "item",
        "SELECT * FROM Item ORDERBY Name MAXRESULTS 1000",
    ),
    "account": MappedType(
        "account",
        PayCode,
        "Account",
        "pay code",
        "account",
        "SELECT * FROM Account WHERE AccountType IN ('Expense', 'Cost of Goods Sold', "
        "'Other Current Liability', 'Other Current Asset') ORDERBY Name MAXRESULTS 1000",
    ),
}


def targets_list(*, mapped: MappedType, company: Company) -> list[dict[str, Any]]:
    """The QuickBooks objects codes may map to, active and inactive, read from QuickBooks."""
    ctx = SyncContext.for_company(company.pk)
    with usage.purpose("mapping"):
        rows = ctx.session.query(mapped.list_query)
    return [
        {
            "id": row["Id"],
            "name": row.get("FullyQualifiedName") or row.get("Name", ""),
            "active": row.get("Active", True),
        }
        for row in rows
    ]


def code_map(*, code: Code, qb_id: str, user: User | None) -> Code:
    """Point a code at an existing QuickBooks object ("" unmaps it).

    The object is checked in QuickBooks first (outside any transaction), like support's QB ID
    override: an Id that is not an active object of that kind there (999999, a credit memo's
    Id) is refused instead of being marked synced."""
    mapped = MAPPED[code.sync_type]
    qb_id = (qb_id or "").strip()
    if qb_id:
        validate_qb_id(qb_id)
        _refuse_taken(mapped, code, qb_id)
        exists, message = qb_object_exists(record=code, qb_id=qb_id)
        if not exists:
            raise ValidationError(message)
    with transaction.atomic():
        code = mapped.model.objects.select_for_update().get(pk=code.pk)
        if qb_id:
            _refuse_taken(mapped, code, qb_id)  # again, under the lock
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
            note=f"{mapped.code_noun.capitalize()} {code.code} mapped to {mapped.target_noun} "
            f"{qb_id or '(none)'}",
            qb_id=qb_id,
            qb_sync_token="",
            problem_reason="",
            **fields,
        )
        if target == SyncStatus.SYNCED:
            requeue_waiting_on(code)
        return code


def _refuse_taken(mapped: MappedType, code: Code, qb_id: str) -> None:
    clash = (
        mapped.model.objects.filter(company_id=code.company_id, qb_id=qb_id)
        .exclude(pk=code.pk)
        .first()
    )
    if clash:
        raise ValidationError(
            f"{mapped.target_noun.capitalize()} {qb_id} is already mapped to "
            f"{mapped.code_noun} {clash.code}."
        )


def create_missing(*, mapped: MappedType, company: Company, user: User | None) -> dict[str, int]:
    """Create a QuickBooks object for every unmapped active code (linking same names)."""
    ManualAction.objects.create(
        kind=ManualAction.Kind.LINK,
        record_type=mapped.sync_type,
        user=user,
        note=f"Create missing {mapped.target_noun}s for the unmapped {mapped.code_noun}s",
    )
    return codes_send(codes=mapped.model.objects.filter(company=company, is_active=True))


def codes_send(*, codes: QuerySet[Any]) -> dict[str, int]:
    """Send these codes (those without a QuickBooks object yet) to QuickBooks, now."""
    unmapped = codes.filter(qb_id="")
    pks = list(unmapped.values_list("pk", flat=True))
    move(unmapped, SyncStatus.PENDING, how="send_items", next_retry_at=None, attempts=0)
    return push_batch(sync_type=codes.model.sync_type, pks=pks) if pks else {}
