"""Turn records into what a row shows: label, amount, plain reason, the screen that fixes it."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from finance.models import SyncedRecord
from finance.registry import RECORD_TYPES, record_type, record_type_of
from sync.mappers import MAPPERS
from sync.problems import Reason, choices_of, reason_for
from sync.selectors import PROBLEM_TABS

TYPE_LABELS = dict(PROBLEM_TABS)
TYPE_SINGULAR = {name: rt.singular for name, rt in RECORD_TYPES.items()}


def url_or_none(name: str, *args: Any, **kwargs: Any) -> str | None:
    try:
        return reverse(name, args=args or None, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def admin_url(sync_type: str, pk: int) -> str | None:
    return url_or_none(f"admin:finance_{record_type(sync_type).admin_name}_change", pk)


def connection_url() -> str:
    return url_or_none("sync:connection") or reverse("finance:quickbooks") + "#connection"


def record_label(record: SyncedRecord) -> str:
    return record_type_of(record).label(record)


def fix_link(
    record: SyncedRecord, reason: Reason, code: str, can_admin: bool = True
) -> tuple[str | None, str]:
    """The screen that fixes it, among those this user can open."""
    if reason.fix == "row":
        return None, ""
    if reason.fix == "match" and record.sync_type == "customer":
        return reverse("sync:customer_match", args=[record.pk]), "Compare with QuickBooks"
    if reason.fix == "number" and MAPPERS[record.sync_type].doc_number_field:
        return reverse("sync:doc_number_match", args=[record.sync_type, record.pk]), (
            "Compare with QuickBooks"
        )
    settings_url = reverse("finance:quickbooks")
    if reason.fix == "mapping" and code == "missing_account_mapping":
        return settings_url + "#pay-codes", "Map pay codes"
    if reason.fix == "mapping":
        return settings_url + "#mapping", "Map charge codes"
    if reason.fix == "settings":
        anchor = "#descriptions" if code == "description_too_long" else "#options"
        return settings_url + anchor, "Open Finance settings"
    if reason.fix == "connection":
        return connection_url(), "Open QuickBooks connection"
    party = record_type_of(record).party(record)
    if reason.fix == "customer" and party is not None:
        query = urlencode({"type": party.sync_type, "q": record_type_of(party).label(party)})
        noun = record_type_of(party).singular.lower()
        return reverse("sync:problems") + "?" + query, f"See the {noun}'s problem"
    if not can_admin:
        return reverse("sync:detail", args=[record.sync_type, record.pk]), "Open the record"
    return admin_url(record.sync_type, record.pk), "Open in admin"


@dataclass(frozen=True)
class RowAction:
    name: str  # the record_action URL's action
    label: str
    confirm: str = ""  # asked before it runs ("" = runs at once)


def _changed_fields(record: SyncedRecord) -> str:
    changes = (record.qb_drift or {}).get("changes") or []
    shown = [f"{c['field']} (QuickBooks now {c['theirs']})" for c in changes[:6]]
    more = f" and {len(changes) - 6} more" if len(changes) > 6 else ""
    return "; ".join(shown) + more if shown else "fields we cannot compare"


def row_actions(record: SyncedRecord, label: str) -> list[RowAction]:
    """The choices that fit the problem: a QuickBooks-side change is never simply re-sent."""
    clear = RowAction(
        "clear",
        "Clear without sync",
        f"Take {label} off the problem list without sending it to QuickBooks? "
        "You can undo it under Recently resolved.",
    )
    reason = choices_of(record.problem_reason)
    if reason == "voided_in_quickbooks":
        return [
            RowAction(
                "accept-void",
                "Void in the TMS too",
                f"Void {label} in the TMS as it is in QuickBooks? Nothing is sent.",
            ),
            RowAction(
                "overwrite",
                "Overwrite QuickBooks",
                f"{label} was voided in QuickBooks. Overwriting sends the TMS version and "
                "un-voids it in QuickBooks. Continue?",
            ),
            clear,
        ]
    if reason == "changed_in_quickbooks":
        return [
            RowAction(
                "accept",
                "Use QuickBooks' version",
                f"Change {label} in the TMS to what QuickBooks holds — "
                f"{_changed_fields(record)} — and send nothing?",
            ),
            RowAction(
                "overwrite",
                "Overwrite QuickBooks",
                f"Replace what was changed in QuickBooks — {_changed_fields(record)} — with "
                f"the TMS version of {label}?",
            ),
            clear,
        ]
    if reason == "deleted_in_quickbooks":
        return [
            RowAction(
                "send-new",
                "Send again as new",
                f"{label} was deleted in QuickBooks. Create it there again as a new object?",
            ),
            clear,
        ]
    choices = [RowAction("resync", "Re-sync"), clear]
    if reason == "vendor_name_taken":
        choices.insert(
            0,
            RowAction(
                "send-suffixed",
                "Send with suffix",
                f"Send {label} to QuickBooks under its name plus the suffix of Finance "
                "settings (QuickBooks has a customer or employee of this name)?",
            ),
        )
    if reason in {"inactive_reference", "invalid_reference"}:
        choices.insert(0, RowAction("check", "Find what QuickBooks refuses"))
    if record_type_of(record).payable_outside:
        choices.append(
            RowAction(
                "mark-paid",
                "Mark paid without sync",
                "Use this when the payment was made directly in QuickBooks. It will be "
                "marked paid here and will not be sent to QuickBooks.",
            )
        )
    return choices


@dataclass
class Row:
    record: SyncedRecord
    sync_type: str
    label: str
    admin_url: str | None
    customer: SyncedRecord | None
    amount: Decimal | None
    reason_code: str
    reason: Reason
    fix_url: str | None
    fix_label: str
    error_title: str
    payable_outside: bool = False
    actions: list[RowAction] = field(default_factory=list)
    support_note: str = ""  # what to send support, when only they can make the fix

    @property
    def dom_id(self) -> str:
        return f"row-{self.sync_type}-{self.record.pk}"

    @property
    def age(self) -> timedelta | None:
        since = self.record.problem_since or self.record.created_at
        return timezone.now() - since if since else None


def _error_title(record: SyncedRecord) -> str:
    message = record.last_error_message or "no message recorded"
    if record.last_error_code:
        return f"Intuit code {record.last_error_code}: {message}"
    return message


def _support_note(record: SyncedRecord, reason: Reason, label: str) -> str:
    qb_id = record.qb_id or "none"
    return (
        f"Please {reason.support}: {label} (TMS id {record.pk}, QuickBooks ID {qb_id}). "
        f"QuickBooks said: {record.last_error_message or reason.title}"
    )[:600]


def present(record: SyncedRecord, *, can_admin: bool = True) -> Row:
    """`can_admin`: the user can open Django admin; otherwise no link leads there."""
    code = record.problem_reason
    reason = reason_for(code)
    fix_url, fix_label = fix_link(record, reason, code, can_admin)
    label = record_label(record)
    return Row(
        record=record,
        sync_type=record.sync_type,
        label=label,
        admin_url=admin_url(record.sync_type, record.pk) if can_admin else None,
        customer=record_type_of(record).party(record),
        amount=record_type_of(record).amount(record),
        reason_code=code,
        reason=reason,
        fix_url=fix_url,
        fix_label=fix_label,
        error_title=_error_title(record),
        payable_outside=record_type_of(record).payable_outside,
        actions=row_actions(record, f"{TYPE_SINGULAR[record.sync_type]} {label}"),
        support_note=_support_note(record, reason, label)
        if reason.support and not can_admin and record.sync_status == "problem"
        else "",
    )


def trend_chart(
    series: list[dict[str, Any]], *, width: int = 280, height: int = 48
) -> dict[str, Any]:
    """Geometry for the inline SVG: two bars a day (opened, resolved), scaled to the max."""
    top = max([max(d["opened"], d["resolved"]) for d in series] + [1])
    slot = width / max(len(series), 1)
    bar = max(slot / 2 - 1, 1)
    days = []
    for i, day in enumerate(series):
        h_open = round(height * day["opened"] / top, 1)
        h_res = round(height * day["resolved"] / top, 1)
        parts = [
            f"{TYPE_LABELS.get(t, t)}: +{v['opened']} / −{v['resolved']}"
            for t, v in sorted(day["by_type"].items())
        ]
        days.append(
            {
                "x_open": round(i * slot, 1),
                "x_res": round(i * slot + bar, 1),
                "y_open": round(height - h_open, 1),
                "y_res": round(height - h_res, 1),
                "h_open": h_open,
                "h_res": h_res,
                "title": f"{day['day']:%b %d}: {day['opened']} opened, {day['resolved']} "
                f"resolved" + (f" ({'; '.join(parts)})" if parts else ""),
            }
        )
    return {
        "width": width,
        "height": height,
        "bar": round(bar, 1),
        "days": days,
        "opened": sum(d["opened"] for d in series),
        "resolved": sum(d["resolved"] for d in series),
    }
