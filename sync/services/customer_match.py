"""A TMS customer QuickBooks refused because the name is taken (6240): finance compares it with
the QuickBooks customers of that name and links it, links it and sends our email, or sends it
under another name. No admin, no QuickBooks ID typed by hand.

QuickBooks is read when the screen opens (one query, a person's action) and the chosen customer
again before linking, outside any transaction: what is linked is what QuickBooks holds then.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from finance.audit import manual_action_record, sync_snapshot
from finance.models import Customer, ManualAction
from finance.qb_ids import refuse_taken_qb_id
from finance.services import customer_update
from finance.syncstate import SyncStatus, transition
from sync.services import enqueue
from sync.services.client import QboError, QboObject, quote
from sync.services.engine import SyncContext
from sync.services.waiting import requeue_waiting_on

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Problems this screen resolves.
NAME_TAKEN = frozenset({"customer_email_mismatch", "duplicate_name"})


@dataclass(frozen=True)
class Candidate:
    qb_id: str
    sync_token: str
    display_name: str
    email: str
    address: str
    balance: Decimal | None
    active: bool
    linked_to: str  # the TMS customer already linked to it ("" = none)


def _candidate(obj: QboObject, linked: dict[str, str]) -> Candidate:
    addr = obj.get("BillAddr") or {}
    parts = [addr.get(k, "") for k in ("Line1", "City", "CountrySubDivisionCode", "PostalCode")]
    balance = obj.get("Balance")
    return Candidate(
        qb_id=str(obj["Id"]),
        sync_token=str(obj.get("SyncToken", "0")),
        display_name=obj.get("DisplayName", ""),
        email=(obj.get("PrimaryEmailAddr") or {}).get("Address", ""),
        address=", ".join(p for p in parts if p),
        balance=Decimal(str(balance)) if balance not in (None, "") else None,
        active=obj.get("Active", True) is not False,
        linked_to=linked.get(str(obj["Id"]), ""),
    )


def candidates_for(*, customer: Customer) -> list[Candidate]:
    """The QuickBooks customers named like ours (the name QuickBooks said is taken)."""
    session = SyncContext.for_company(customer.company_id).session
    rows = session.query(
        f"SELECT * FROM Customer WHERE DisplayName = {quote(customer.display_name)}"
    )
    ids = [str(r["Id"]) for r in rows]
    linked = dict(
        Customer.objects.filter(company_id=customer.company_id, qb_id__in=ids)
        .exclude(pk=customer.pk)
        .values_list("qb_id", "display_name")
    )
    return [_candidate(r, linked) for r in rows]


def _chosen(customer: Customer, qb_id: str) -> Candidate:
    session = SyncContext.for_company(customer.company_id).session
    try:
        obj = session.read("Customer", qb_id)
    except QboError as exc:
        raise ValidationError(f"QuickBooks customer {qb_id} could not be read: {exc}") from None
    chosen = _candidate(obj, {})
    if chosen.display_name.casefold() != customer.display_name.casefold():
        raise ValidationError(
            f"QuickBooks customer {qb_id} is named {chosen.display_name!r}, not "
            f"{customer.display_name!r}: pick one of the customers listed."
        )
    if not chosen.active:
        raise ValidationError(f"QuickBooks customer {qb_id} is inactive: reactivate it first.")
    return chosen


def customer_link_existing(
    *, customer: Customer, qb_id: str, user: User | None, send_ours: bool = False
) -> Customer:
    """Link to the QuickBooks customer `qb_id`. As it is there (synced, nothing sent), or with
    `send_ours` our details (email, address) sent over theirs, as the person chose."""
    chosen = _chosen(customer, qb_id)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if customer.sync_status != SyncStatus.PROBLEM or customer.problem_reason not in NAME_TAKEN:
            raise ValidationError(f"{customer} has no name conflict to resolve.")
        refuse_taken_qb_id(record=customer, qb_id=qb_id)
        link = {"qb_id": chosen.qb_id, "qb_sync_token": chosen.sync_token, "problem_reason": ""}
        common = {"problem_since": None, "attempts": 0, "next_retry_at": None, **link}
        if send_ours:
            note = f"Linked to QuickBooks customer {qb_id}; our email and address sent to it."
            customer = transition(
                customer, SyncStatus.PENDING, how="linked", user=user,
                audit=ManualAction.Kind.LINK, note=note, version=F("version") + 1, **common,
            )  # fmt: skip
            enqueue.push_now(customer.sync_type, customer.pk)
        else:
            note = f"Linked to QuickBooks customer {qb_id} as it is in QuickBooks."
            customer = transition(
                customer, SyncStatus.SYNCED, how="linked", user=user,
                audit=ManualAction.Kind.LINK, note=note, synced_version=customer.version,
                last_error_code="", last_error_message="", **common,
            )  # fmt: skip
            requeue_waiting_on(customer)
    return customer


def customer_send_as(*, customer: Customer, display_name: str, user: User | None) -> Customer:
    """Send it under another name (QuickBooks' name list is shared with vendors and employees)."""
    name = " ".join(display_name.split())
    if not name:
        raise ValidationError("Give the customer a name.")
    if name.casefold() == customer.display_name.casefold():
        raise ValidationError(f"QuickBooks already uses {name!r}: choose another name.")
    if customer.sync_status != SyncStatus.PROBLEM or customer.problem_reason not in NAME_TAKEN:
        raise ValidationError(f"{customer} has no name conflict to resolve.")
    before = sync_snapshot(customer)
    customer = customer_update(customer=customer, display_name=name)
    manual_action_record(
        kind=ManualAction.Kind.LINK,
        record=customer,
        user=user,
        before=before,
        note=f"Sent to QuickBooks as {name!r} (the name was taken there).",
    )
    return customer
