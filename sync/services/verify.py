"""Checks against QuickBooks before a person points the TMS at an existing object: support's
QuickBooks ID override (finance.qb_ids), and the income account in Finance settings."""

from typing import Any

from finance.models import Company, SyncedRecord
from sync.mappers import MAPPERS
from sync.models import QuickBooksConnection
from sync.services import usage
from sync.services.client import NeedsReconnect, QboError, session_for


def _read_active(company_id: int, entity: str, qb_id: str) -> tuple[dict[str, Any] | None, str]:
    """The active object, or None and why not, in words for the person who typed the Id."""
    # "no Invoice with ID 7" / "no account with ID 7"; "the ID cannot be checked" / "the account".
    label = entity if entity != "Account" else "account"
    subject = "ID" if entity != "Account" else "account"
    connection = QuickBooksConnection.objects.filter(company_id=company_id).first()
    if connection is None or not connection.is_usable:
        return (
            None,
            f"QuickBooks is not connected, so the {subject} cannot be checked. Connect first.",
        )
    try:
        with usage.purpose("check"):
            obj = session_for(connection).read(entity, qb_id)
    except NeedsReconnect:
        return None, f"QuickBooks needs reconnecting, so the {subject} cannot be checked."
    except QboError as error:
        if error.kind in {"not_found", "invalid_reference", "validation"}:
            return None, f"QuickBooks has no {label} with ID {qb_id}."
        return None, f"QuickBooks could not be asked right now ({error.message}). Try again."
    if obj.get("Active") is False:
        return None, f"{entity} {qb_id} is inactive in QuickBooks."
    return obj, ""


def qb_object_exists(*, record: SyncedRecord, qb_id: str) -> tuple[bool, str]:
    entity = MAPPERS[record.sync_type].entity
    obj, refusal = _read_active(record.company_id, entity, qb_id)
    if obj is None:
        return False, refusal
    return True, f"{entity} {qb_id} exists in QuickBooks."


def qb_income_account_exists(*, company: Company, qb_id: str) -> tuple[bool, str]:
    """The income account new items post to must be an active Income account in QuickBooks."""
    account, refusal = _read_active(company.pk, "Account", qb_id)
    if account is None:
        return False, refusal
    name = account.get("Name", "")
    if account.get("AccountType") != "Income":
        kind = account.get("AccountType") or "another kind of"
        return False, f"Account {qb_id} ({name}) is a {kind} account, not Income."
    return True, f"Account {qb_id} ({name}) is an Income account."
