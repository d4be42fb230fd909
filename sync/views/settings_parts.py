"""The QuickBooks parts of Finance → QuickBooks: connection card and charge-code → Item mapping.

They live here (loaded into the finance page with htmx) because finance never imports sync.
"""

import logging
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from finance.models import ChargeCode, Company
from sync.selectors import connection_for_company
from sync.views.access import check_settings_editor, current_company
from sync.views.present import url_or_none

logger = logging.getLogger(__name__)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _settings_url(anchor: str) -> str:
    return reverse("finance:quickbooks") + anchor


@login_required
@require_GET
def connection_card(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    connection = connection_for_company(company=current_company(request))
    mapped = 0
    if connection.realm_id:
        from sync.services.connection import mapped_record_count

        mapped = mapped_record_count(connection)
    context = {
        "connection": connection,
        "mapped_count": mapped,
        "connect_url": url_or_none("sync:connect"),
        "disconnect_url": url_or_none("sync:disconnect"),
        "can_manage": request.user.has_perm("sync.manage_connection"),
    }
    template = "sync/_connection_card.html" if _is_htmx(request) else "sync/connection_card.html"
    return render(request, template, context)


def _read_items(company: Company) -> tuple[list[dict[str, Any]] | None, str | None]:
    try:
        from sync.services.items import items_list

        return items_list(company=company), None
    except Exception as exc:  # noqa: BLE001 - shown to the user, typing an Item Id still works
        logger.info("items_list failed: %s", exc)
        message = str(exc).rstrip(".") or exc.__class__.__name__
        return None, f"Could not read items from QuickBooks: {message}."


@login_required
@require_GET
def item_mapping(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    company = current_company(request)
    items, items_error = _read_items(company)
    names = {str(i["id"]): i["name"] for i in items or []}
    codes = list(ChargeCode.objects.filter(company=company).order_by("code"))
    for code in codes:
        code.item_name = names.get(code.qb_id, "")
    context = {
        "codes": codes,
        "items": [i for i in items or [] if i.get("active", True)],
        "items_error": items_error,
        "unmapped": sum(1 for c in codes if not c.qb_id),
    }
    template = "sync/_item_mapping.html" if _is_htmx(request) else "sync/item_mapping.html"
    return render(request, template, context)


class ItemMapForm(forms.Form):
    charge_code = forms.ModelChoiceField(
        queryset=ChargeCode.objects.none(),
        error_messages={"invalid_choice": "That charge code does not exist (any more)."},
    )
    item_id = forms.CharField(required=False, max_length=32)
    item_id_typed = forms.CharField(required=False, max_length=32)

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        charge_code = self.fields["charge_code"]
        assert isinstance(charge_code, forms.ModelChoiceField), "declared above"
        charge_code.queryset = ChargeCode.objects.filter(company=company)


@login_required
@require_POST
def item_map(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    form = ItemMapForm(request.POST, company=current_company(request))
    if not form.is_valid():
        errors = "; ".join(str(e) for field in form.errors.values() for e in field)
        messages.error(request, f"Could not map the charge code: {errors}")
        return redirect(_settings_url("#mapping"))
    charge_code = form.cleaned_data["charge_code"]
    item_id = (form.cleaned_data["item_id"] or form.cleaned_data["item_id_typed"]).strip()
    if not item_id.isdigit():
        messages.error(request, f"{charge_code.code}: choose an item or type its Item Id.")
        return redirect(_settings_url("#mapping"))
    try:
        from sync.services.items import item_map as map_item

        map_item(charge_code=charge_code, item_id=item_id, user=request.user)
    except ValidationError as exc:
        messages.error(request, f"Could not map {charge_code.code}: {' '.join(exc.messages)}")
    except Exception as exc:  # noqa: BLE001 - a plain message next to the table
        logger.warning("mapping %s failed: %s", charge_code.code, exc)
        messages.error(request, f"Could not map {charge_code.code}: {exc}")
    else:
        messages.success(request, f"{charge_code.code} now maps to QuickBooks item {item_id}.")
    return redirect(_settings_url("#mapping"))


@login_required
@require_POST
def items_create_missing(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    try:
        from sync.services.items import items_create_missing as create_missing

        result = create_missing(company=current_company(request), user=request.user)
        count = result if isinstance(result, int) else len(result or {})
        messages.success(request, f"Sent {count} charge code(s) to QuickBooks as items.")
    except Exception as exc:  # noqa: BLE001
        messages.error(request, f"Could not create the missing items: {exc}")
    return redirect(_settings_url("#mapping"))
