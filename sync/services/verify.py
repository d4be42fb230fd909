"""Check a QuickBooks ID before support points a record at it (finance.qb_ids uses this)."""

from sync.mappers import MAPPERS
from sync.models import QuickBooksConnection
from sync.services.client import NeedsReconnect, QboError, session_for


def qb_object_exists(*, record, qb_id: str) -> tuple[bool, str]:
    mapper = MAPPERS[record.sync_type]
    connection = QuickBooksConnection.objects.filter(company_id=record.company_id).first()
    if connection is None or not connection.is_usable:
        return False, "QuickBooks is not connected, so the ID cannot be checked. Connect first."
    try:
        obj = session_for(connection).read(mapper.entity, qb_id)
    except NeedsReconnect:
        return False, "QuickBooks needs reconnecting, so the ID cannot be checked."
    except QboError as error:
        if error.kind in {"not_found", "invalid_reference", "validation"}:
            return False, f"QuickBooks has no {mapper.entity} with ID {qb_id}."
        return False, f"QuickBooks could not be asked right now ({error.message}). Try again."
    if obj.get("Active") is False:
        return False, f"{mapper.entity} {qb_id} is inactive in QuickBooks."
    return True, f"{mapper.entity} {qb_id} exists in QuickBooks."


def qb_income_account_exists(*, company, qb_id: str) -> tuple[bool, str]:
    """The income account new items post to (Finance settings) must be an active Income
    account in QuickBooks."""
    connection = QuickBooksConnection.objects.filter(company_id=company.pk).first()
    if connection is None or not connection.is_usable:
        return False, "QuickBooks is not connected, so the account cannot be checked."
    try:
        account = session_for(connection).read("Account", qb_id)
    except NeedsReconnect:
        return False, "QuickBooks needs reconnecting, so the account cannot be checked."
    except QboError as error:
        if error.kind in {"not_found", "invalid_reference", "validation"}:
            return False, f"QuickBooks has no account with ID {qb_id}."
        return False, f"QuickBooks could not be asked right now ({error.message}). Try again."
    if account.get("Active") is False:
        return False, f"Account {qb_id} is inactive in QuickBooks."
    if account.get("AccountType") != "Income":
        kind = account.get("AccountType") or "another kind of"
        return (
            False,
            f"Account {qb_id} ({account.get('Name', '')}) is a {kind} account, not Income.",
        )
    return True, f"Account {qb_id} ({account.get('Name', '')}) is an Income account."
