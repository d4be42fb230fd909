"""The matching screens: a customer name or a document number QuickBooks says is taken,
resolved by finance."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from finance.http import AuthenticatedHttpRequest
from finance.models import Customer, SyncedRecord
from finance.syncstate import SyncStatus
from sync.mappers import MAPPERS
from sync.services import customer_match, doc_number_match
from sync.services.client import NeedsReconnect, QboError
from sync.views.access import get_record_for_user
from sync.views.present import record_label

logger = logging.getLogger(__name__)


@login_required
@require_http_methods(["GET", "POST"])
def customer_match_page(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    customer, can_write = get_record_for_user(request, "customer", pk)
    assert isinstance(customer, Customer), "the customer type's model"
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("You need the Finance role to resolve sync problems.")
        return _choose(request, customer)
    candidates, error = [], ""
    if customer.problem_reason in customer_match.NAME_TAKEN:
        try:
            candidates = customer_match.candidates_for(customer=customer)
        except (QboError, NeedsReconnect) as exc:
            error = f"QuickBooks could not be asked: {exc}"
    context = {
        "customer": customer,
        "candidates": candidates,
        "error": error,
        "can_write": can_write,
        "open_conflict": customer.problem_reason in customer_match.NAME_TAKEN,
    }
    return render(request, "sync/customer_match.html", context)


def _choose(request: AuthenticatedHttpRequest, customer: Customer) -> HttpResponse:
    choice = request.POST.get("choice", "")
    here = reverse("sync:customer_match", args=[customer.pk])
    try:
        if choice in {"link", "link_send"}:
            customer = customer_match.customer_link_existing(
                customer=customer,
                qb_id=request.POST.get("qb_id", "").strip(),
                user=request.user,
                send_ours=choice == "link_send",
            )
            done = f"{customer.display_name} is linked to QuickBooks customer {customer.qb_id}"
        elif choice == "rename":
            customer = customer_match.customer_send_as(
                customer=customer, display_name=request.POST.get("display_name", ""),
                user=request.user,
            )  # fmt: skip
            done = f"{customer.display_name} is being sent to QuickBooks under its new name"
        else:
            raise ValidationError("Choose one of the options on the page.")
    except (ValidationError, QboError, NeedsReconnect) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        logger.info("customer match refused for %s: %s", customer.pk, text)
        messages.error(request, text)
        return redirect(here)
    messages.success(request, f"{done}; its invoices and payments waiting on it follow.")
    return redirect(reverse("sync:problems") + "?type=customer")


@login_required
@require_http_methods(["GET", "POST"])
def doc_number_match_page(
    request: AuthenticatedHttpRequest, sync_type: str, pk: int
) -> HttpResponse:
    record, can_write = get_record_for_user(request, sync_type, pk)
    if not MAPPERS[sync_type].doc_number_field:
        raise Http404("This record type has no document number.")
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("You need the Finance role to resolve sync problems.")
        return _choose_number(request, record)
    open_conflict = record.problem_reason in doc_number_match.DOC_TAKEN
    holders, error = [], ""
    if open_conflict:
        try:
            holders = doc_number_match.holders_of(record=record)
        except (QboError, NeedsReconnect) as exc:
            error = f"QuickBooks could not be asked: {exc}"
    context = {
        "record": record,
        "label": record_label(record),
        "number": doc_number_match.number_of(record),
        "holders": holders,
        "error": error,
        "can_write": can_write,
        "open_conflict": open_conflict,
        "suggested": doc_number_match.suggested_number(record) if open_conflict else "",
        "back": reverse("sync:problems") + f"?type={sync_type}",
    }
    return render(request, "sync/doc_number_match.html", context)


def _choose_number(request: AuthenticatedHttpRequest, record: SyncedRecord) -> HttpResponse:
    choice = request.POST.get("choice", "")
    here = reverse("sync:doc_number_match", args=[record.sync_type, record.pk])
    try:
        if choice == "link":
            qb_id = request.POST.get("qb_id", "").strip()
            record = doc_number_match.doc_link_existing(
                record=record, qb_id=qb_id, user=request.user
            )
            done = f"{record_label(record)} is linked to QuickBooks document {qb_id}"
            if record.sync_status == SyncStatus.PROBLEM:
                done += ", which differs from ours: choose which version stays on its row"
        elif choice == "renumber":
            record = doc_number_match.doc_send_as(
                record=record, doc_number=request.POST.get("doc_number", ""), user=request.user
            )
            done = f"{record_label(record)} is being sent to QuickBooks under its new number"
        else:
            raise ValidationError("Choose one of the options on the page.")
    except (ValidationError, QboError, NeedsReconnect) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        logger.info(
            "document number match refused for %s %s: %s", record.sync_type, record.pk, text
        )
        messages.error(request, text)
        return redirect(here)
    messages.success(request, f"{done}.")
    return redirect(reverse("sync:problems") + f"?type={record.sync_type}")
