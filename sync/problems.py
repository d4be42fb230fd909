"""Every reason a record can fail to reach QuickBooks, in words a finance clerk can act on.

Engine code stores the reason *code* on the record (`problem_reason`); pages show `REASONS`.
`fix` names the screen that fixes it: a URL name resolved by the UI ("admin" = the record's
admin page, "settings" = Finance → QuickBooks, "mapping" = the charge-code or pay-code mapping, "connection"
= the QuickBooks connection card, "row" = the row's own buttons, no other screen, "match" =
the customer matching screen, "number" = the document number screen). A user who cannot open admin gets the record's page instead.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    title: str
    hint: str
    fix: str = "admin"
    link_offer: bool = False
    # What only support can do (in admin), said to a finance user with a note to send them.
    support: str = ""
    show_message: bool = False  # the record's own message says what to fix (names the record)
    # The row offers the choices of this other reason (a reconciliation finding is the same
    # situation as the change a pull would have seen, found another way).
    choices_as: str = ""


REASONS: dict[str, Reason] = {
    "attachment_refused": Reason(
        "QuickBooks refused the document",
        "QuickBooks takes PDF, images, text, CSV and office files up to 100 MB. Replace the "
        "document's file on the load with one it takes, then re-sync.",
        show_message=True,
    ),
    "attachment_file_missing": Reason(
        "The document's file is gone from the document store",
        "Upload the document again on the load (or restore the file), then re-sync.",
        show_message=True,
    ),
    "missing_item_mapping": Reason(
        "A charge code has no QuickBooks item",
        "Map the charge code to a QuickBooks item (or let us create it), then re-sync.",
        "mapping",
    ),
    "customer_not_synced": Reason(
        "The customer is not in QuickBooks yet",
        "Fix the customer's own problem on the Customers tab (or turn on auto-create), then "
        "re-sync this record.",
        "customer",
    ),
    "customer_email_mismatch": Reason(
        "A different customer with this name already exists in QuickBooks",
        "QuickBooks has a customer with the same display name but another email. Compare them "
        "and link it to the QuickBooks customer if it is the same one, or send it under "
        "another name.",
        "match",
        link_offer=True,
    ),
    "duplicate_name": Reason(
        "The name is already used in QuickBooks",
        "Customer, vendor and employee names share one list in QuickBooks. Link it to the "
        "QuickBooks customer of that name if it is the same one, or send it under another name.",
        "match",
        link_offer=True,
    ),
    "vendor_name_taken": Reason(
        "A customer or employee in QuickBooks has this vendor's name",
        "QuickBooks keeps one list of names for customers, vendors and employees. Send the "
        "vendor with the suffix of Finance settings (“Send with suffix”), or rename it in the "
        "TMS and re-sync.",
        "row",
        show_message=True,
    ),
    "vendor_not_synced": Reason(
        "The vendor is not in QuickBooks yet",
        "Fix the vendor's own problem on the Vendors tab; the bill follows on re-sync.",
        "customer",
    ),
    "missing_account_mapping": Reason(
        "A pay code has no QuickBooks account",
        "Map the pay code to a QuickBooks expense account (or let us create it), then re-sync.",
        "mapping",
    ),
    "duplicate_doc_number": Reason(
        "This document number is already used in QuickBooks",
        "QuickBooks already has a document with this number. Compare them: link ours to it if "
        "it is the same one, or send ours under another number.",
        "number",
        link_offer=True,
    ),
    "stale_object": Reason(
        "Changed in QuickBooks at the same time",
        "Someone changed this record in QuickBooks while we were saving it. Re-sync to apply "
        "the TMS version on top of theirs.",
    ),
    "customer_changed_after_sync": Reason(
        "The customer was changed in QuickBooks after it was synced",
        "Check the customer in QuickBooks, then re-sync to send the TMS version.",
    ),
    "inactive_reference": Reason(
        "Something this record uses is inactive or deleted in QuickBooks",
        "A customer or item this record uses was made inactive or deleted in QuickBooks. "
        "“Find what QuickBooks refuses” names it and puts it on its own tab to reactivate or "
        "send again; this record then follows by itself.",
        "row",
    ),
    "invalid_reference": Reason(
        "Something this record uses is not in QuickBooks",
        "QuickBooks says a customer, item or invoice this record names does not exist. "
        "“Find what QuickBooks refuses” names it and puts it on its own tab to send again; "
        "this record then follows by itself.",
        "row",
    ),
    "deleted_in_quickbooks": Reason(
        "Deleted in QuickBooks",
        "Someone deleted this in QuickBooks. Send it again as a new QuickBooks object if it "
        "belongs there, or clear it from this list if it should stay deleted.",
        "row",
    ),
    "voided_in_quickbooks": Reason(
        "Voided in QuickBooks",
        "The invoice was voided in QuickBooks. Void it in the TMS too, overwrite QuickBooks "
        "with the TMS version (un-voids it there), or clear it here.",
        "row",
    ),
    "changed_in_quickbooks": Reason(
        "Changed in QuickBooks since the last sync",
        "Someone changed fields we send (see Details for both versions). Overwrite QuickBooks "
        "with the TMS version, or change the TMS record to match and re-sync, or clear it.",
        "row",
    ),
    "uses_a_problem": Reason(
        "Something it uses has a problem of its own in QuickBooks",
        "A customer, item or invoice this record uses is inactive or deleted in QuickBooks "
        "(named below). Fix that one on its own tab; this record then goes by itself.",
        "row",
        show_message=True,
    ),
    "validation": Reason(
        "QuickBooks refused the data",
        "QuickBooks rejected a field (see the message). Correct the record, then re-sync.",
    ),
    "required_field": Reason(
        "A field QuickBooks requires is missing",
        "Fill in the field named in the message, then re-sync.",
    ),
    "description_too_long": Reason(
        "A line description is longer than QuickBooks allows",
        "Shorten the description mapping or the charge notes (4000 characters per line).",
        "settings",
    ),
    "invoice_not_synced": Reason(
        "An invoice this payment applies to is not in QuickBooks",
        "Fix the invoice's problem first; the payment follows automatically on re-sync.",
    ),
    "no_lines": Reason(
        "Nothing to send",
        "The invoice has no charge lines. Add charges or void it.",
    ),
    "not_connected": Reason(
        "QuickBooks is not connected",
        "Connect QuickBooks on the connection page; the record syncs by itself afterwards.",
        "connection",
    ),
    "needs_reconnect": Reason(
        "QuickBooks needs reconnecting",
        "The QuickBooks authorization expired or was revoked. Reconnect; nothing is lost.",
        "connection",
    ),
    "too_many_attempts": Reason(
        "QuickBooks kept failing",
        "We retried several times without success (see the message). Re-sync when QuickBooks "
        "is healthy again.",
    ),
    "permission": Reason(
        "QuickBooks refused access",
        "The connected QuickBooks user lacks rights for this. Reconnect with an admin user.",
        "connection",
    ),
    "internal": Reason(
        "Unexpected error",
        "Something unexpected went wrong (details in the attempt history). Re-sync; if it "
        "fails again, send the message to support.",
    ),
    # Found by the reconciliation (sync/services/reconcile.py) on a record the TMS held as synced.
    "reconcile_missing": Reason(
        "Reconciliation: not found in QuickBooks",
        "The nightly reconciliation found no QuickBooks copy of this record although it was "
        "synced. Send it again as a new QuickBooks object, or clear it if it should not be there.",
        "row",
        show_message=True,
        choices_as="deleted_in_quickbooks",
    ),
    "reconcile_deleted": Reason(
        "Reconciliation: deleted in QuickBooks",
        "QuickBooks holds this record as deleted (its deletion had not reached us). Send it "
        "again as new if it belongs there, or clear it if it should stay deleted.",
        "row",
        choices_as="deleted_in_quickbooks",
    ),
    "reconcile_voided": Reason(
        "Reconciliation: voided in QuickBooks only",
        "QuickBooks shows this voided; the TMS does not. Void it in the TMS too, overwrite "
        "QuickBooks with the TMS version (un-voids it there), or clear it.",
        "row",
        choices_as="voided_in_quickbooks",
    ),
    "reconcile_void_not_sent": Reason(
        "Reconciliation: void not in QuickBooks",
        "It is void in the TMS, but QuickBooks still holds it with its amount. Re-sync to send "
        "the void.",
        "row",
        show_message=True,
    ),
    "reconcile_amount_differs": Reason(
        "Reconciliation: amount differs in QuickBooks",
        "QuickBooks holds another amount than the TMS (see Details for both versions). Use "
        "QuickBooks' version, overwrite QuickBooks with the TMS version, or clear it.",
        "row",
        show_message=True,
        choices_as="changed_in_quickbooks",
    ),
    "reconcile_paid_differs": Reason(
        "Reconciliation: paid amount differs",
        "QuickBooks and the TMS disagree on what is still open. If the payment was applied in "
        "QuickBooks, mark it paid without sync; if a TMS payment is missing there, see the "
        "Payments tab; clear it once both agree.",
        "row",
        show_message=True,
    ),
}


def reason_for(code: str) -> Reason:
    return REASONS.get(code) or REASONS["internal"]


def choices_of(code: str) -> str:
    """The reason whose row choices (and action guards) a problem of `code` takes."""
    reason = REASONS.get(code)
    return (reason.choices_as if reason else "") or code
