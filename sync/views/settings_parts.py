"""The QuickBooks parts of Finance → QuickBooks: connection card, charge codes → Items and pay
codes → Accounts.

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
from sync.selectors import authorization_end_for, connection_for_company
from sync.services import pull, usage
from sync.services.mapping import MAPPED, MappedType, code_map, create_missing, targets_list
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
        "authorization": authorization_end_for(connection=connection),
        "mapped_count": mapped,
        "connect_url": url_or_none("sync:connect"),
        "disconnect_url": url_or_none("sync:disconnect"),
        "can_manage": request.user.has_perm("sync.manage_connection"),
        "reads": usage.read_budget(company=connection.company),
        "pulls": pull.pull_schedule(connection),
    }
    template = "sync/_connection_card.html" if _is_htmx(request) else "sync/connection_card.html"
    return render(request, template, context)


def _read_targets(
    mapped: MappedType, company: Company
) -> tuple[list[dict[str, Any]] | None, str | None]:
    try:
        return targets_list(mapped=mapped, company=company), None
    except Exception as exc:  # noqa: BLE001 - shown to the user, typing an Id still works
        logger.info("reading %ss failed: %s", mapped.target_noun, exc)
        message = str(exc).rstrip(".") or exc.__class__.__name__
        return None, f"Could not read {mapped.target_noun}s from QuickBooks: {message}."


# Per mapped type: its card's anchor on Finance → QuickBooks and its URL names.
URL_NAMES = {
    "item": ("#mapping", "sync:item_map", "sync:items_create_missing"),
    "account": ("#pay-codes", "sync:account_map", "sync:accounts_create_missing"),
}


def _mapping(request: AuthenticatedHttpRequest, sync_type: str) -> HttpResponse:
    check_settings_editor(request)
    mapped = MAPPED[sync_type]
    company = current_company(request)
    targets, targets_error = _read_targets(mapped, company)
    names = {str(t["id"]): t["name"] for t in targets or []}
    codes = list(mapped.model.objects.filter(company=company).order_by("code"))
    for code in codes:
        code.target_name = names.get(code.qb_id, "")
    _, map_url, create_url = URL_NAMES[sync_type]
    context = {
        "mapped": mapped,
        "codes": codes,
        "targets": [t for t in targets or [] if t.get("active", True)],
        "targets_error": targets_error,
        "unmapped": sum(1 for c in codes if not c.qb_id),
        "map_url": reverse(map_url),
        "create_url": reverse(create_url),
    }
    if _is_htmx(request):
        return render(request, "sync/_code_mapping.html", context)
    return render(request, "sync/code_mapping.html", context)


@login_required
@require_GET
def item_mapping(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _mapping(request, "item")


@login_required
@require_GET
def account_mapping(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _mapping(request, "account")


class CodeMapForm(forms.Form):
    code = forms.ModelChoiceField(
        queryset=ChargeCode.objects.none(),
        error_messages={"invalid_choice": "That code does not exist (any more)."},
    )
    qb_id = forms.CharField(required=False, max_length=32)
    qb_id_typed = forms.CharField(required=False, max_length=32)

    def __init__(self, *args: Any, mapped: MappedType, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        code = self.fields["code"]
        assert isinstance(code, forms.ModelChoiceField), "declared above"
        code.queryset = mapped.model.objects.filter(company=company)


def _map(request: AuthenticatedHttpRequest, sync_type: str) -> HttpResponse:
    check_settings_editor(request)
    mapped = MAPPED[sync_type]
    anchor = URL_NAMES[sync_type][0]
    form = CodeMapForm(request.POST, mapped=mapped, company=current_company(request))
    if not form.is_valid():
        errors = "; ".join(str(e) for field in form.errors.values() for e in field)
        messages.error(request, f"Could not map the {mapped.code_noun}: {errors}")
        return redirect(_settings_url(anchor))
    code = form.cleaned_data["code"]
    qb_id = (form.cleaned_data["qb_id"] or form.cleaned_data["qb_id_typed"]).strip()
    noun = mapped.target_noun
    if not qb_id.isdigit():
        messages.error(
            request, f"{code.code}: choose an {noun} or type its {noun.capitalize()} Id."
        )
        return redirect(_settings_url(anchor))
    try:
        code_map(code=code, qb_id=qb_id, user=request.user)
    except ValidationError as exc:
        messages.error(request, f"Could not map {code.code}: {' '.join(exc.messages)}")
    except Exception as exc:  # noqa: BLE001 - a plain message next to the table
        logger.warning("mapping %s failed: %s", code.code, exc)
        messages.error(request, f"Could not map {code.code}: {exc}")
    else:
        messages.success(request, f"{code.code} now maps to QuickBooks {noun} {qb_id}.")
    return redirect(_settings_url(anchor))


@login_required
@require_POST
def item_map(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _map(request, "item")


@login_required
@require_POST
def account_map(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _map(request, "account")


def _create_missing(request: AuthenticatedHttpRequest, sync_type: str) -> HttpResponse:
    check_settings_editor(request)
    mapped = MAPPED[sync_type]
    try:
        result = create_missing(mapped=mapped, company=current_company(request), user=request.user)
        count = sum((result or {}).values())
        messages.success(
            request, f"Sent {count} {mapped.code_noun}(s) to QuickBooks as {mapped.target_noun}s."
        )
    except Exception as exc:  # noqa: BLE001
        messages.error(request, f"Could not create the missing {mapped.target_noun}s: {exc}")
    return redirect(_settings_url(URL_NAMES[sync_type][0]))


@login_required
@require_POST
def items_create_missing(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _create_missing(request, "item")


@login_required
@require_POST
def accounts_create_missing(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _create_missing(request, "account")
