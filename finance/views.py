"""Settings → Finance → QuickBooks: sync options, description mapping with live preview.

The QuickBooks-side cards (connection, charge-code → Item mapping) are sync views loaded into
this page with htmx, so finance keeps not importing sync.
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from finance.descriptions import preview_descriptions
from finance.forms import (
    DESCRIPTION_FORM_FIELDS,
    DescriptionMappingForm,
    SyncOptionsForm,
    sample_invoices,
)
from finance.http import AuthenticatedHttpRequest
from finance.models import DESCRIPTION_FIELDS, FinanceSettings, Invoice
from finance.selectors import synced_invoices
from finance.services import finance_settings_get, finance_settings_update
from finance.tenancy import current_company, may_write, switch_company

logger = logging.getLogger(__name__)
SETTINGS_PERM = "finance.change_financesettings"
SettingsForm = SyncOptionsForm | DescriptionMappingForm
# The page's two forms (class, prefix), by the `section` a POST names.
SECTION_FORMS: dict[str, tuple[type[SettingsForm], str]] = {
    "options": (SyncOptionsForm, "opt"),
    "descriptions": (DescriptionMappingForm, "desc"),
}


def _settings_for(request: AuthenticatedHttpRequest) -> FinanceSettings:
    if not request.user.has_perm(SETTINGS_PERM):
        raise PermissionDenied("You need the Finance role to change QuickBooks settings.")
    company = current_company(request)
    if not may_write(request.user, company):
        raise PermissionDenied(f"Your role in {company} is Support: settings are finance's.")
    return finance_settings_get(company=company)


def _ordered_fields(selected: Iterable[str] | None) -> list[tuple[str, str, bool]]:
    """Every optional field, ticked ones first in their chosen order."""
    selected = [f for f in selected or [] if f in DESCRIPTION_FIELDS]
    rest = [f for f in DESCRIPTION_FIELDS if f not in selected]
    return [(f, DESCRIPTION_FIELDS[f], f in selected) for f in selected + rest]


@login_required
@require_http_methods(["GET", "POST"])
def quickbooks(request: AuthenticatedHttpRequest) -> HttpResponse:
    settings_row = _settings_for(request)
    options: SettingsForm = SyncOptionsForm(instance=settings_row, prefix="opt")
    mapping: SettingsForm = DescriptionMappingForm(instance=settings_row, prefix="desc")
    if request.method == "POST":
        section = request.POST.get("section", "")
        if section not in SECTION_FORMS:
            messages.error(request, "Unknown settings section.")
            return redirect("finance:quickbooks")
        form_class, prefix = SECTION_FORMS[section]
        form = form_class(request.POST, instance=settings_row, prefix=prefix)
        # Read before is_valid(): a ModelForm writes the cleaned values onto its instance.
        descriptions_before = [getattr(settings_row, n) for n in DESCRIPTION_FORM_FIELDS]
        if form.is_valid():
            try:
                finance_settings_update(
                    settings_row=settings_row,
                    fields={name: form.cleaned_data[name] for name in form.Meta.fields},
                    user=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "QuickBooks settings saved.")
                anchor = "#options" if section == "options" else "#descriptions"
                settings_row.refresh_from_db()
                if descriptions_before != [
                    getattr(settings_row, n) for n in DESCRIPTION_FORM_FIELDS
                ]:
                    # Invoices already in QuickBooks keep the old text until re-sent: offer it.
                    anchor = "?descriptions_changed=1#descriptions"
                return redirect(reverse("finance:quickbooks") + anchor)
        # Show the bad form with its errors; the row in the database is untouched.
        logger.info(
            "Finance settings refused (%s, by %s): %s",
            section,
            request.user.username,
            "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()),
        )
        settings_row.refresh_from_db()
        if section == "options":
            options = form
        else:
            mapping = form
    chosen = (
        # Bound only when it is this POST's refused descriptions form.
        request.POST.getlist("desc-description_fields")
        if mapping.is_bound
        else settings_row.description_fields
    )
    context = {
        "resend_count": synced_invoices(company=settings_row.company).count()
        if request.GET.get("descriptions_changed")
        else None,
        "settings_row": settings_row,
        "sweep_seconds": settings.SYNC_SWEEP_SECONDS,
        "options": options,
        "mapping": mapping,
        "ordered_fields": _ordered_fields(chosen),
        "samples": sample_invoices(settings_row.company),
        "toggle_fields": [
            options[name]
            for name in (
                "sync_customers",
                "sync_invoices",
                "sync_payments",
                "sync_credit_memos",
                "sync_vendors",
                "sync_bills",
                "push_on_change",
                "pull_payments",
                "pull_bill_payments",
            )
        ],
        "detail_fields": [
            options[name]
            for name in (
                "auto_create_customers",
                "invoice_sync_trigger",
                "payment_pull_days",
                "income_account_ref",
                "vendor_name_clash",
                "vendor_name_suffix",
            )
        ],
        "document_fields": [options["attach_document_kinds"], options["attachments_on_send"]],
    }
    return render(request, "finance/quickbooks.html", context)


@login_required
@require_POST
def description_preview(request: AuthenticatedHttpRequest) -> HttpResponse:
    settings_row = _settings_for(request)
    form = DescriptionMappingForm(request.POST, instance=settings_row, prefix="desc")
    invoice = (
        Invoice.objects.filter(company=settings_row.company, pk=request.POST.get("sample") or 0)
        .select_related("customer")
        .first()
    )
    context: dict[str, Any] = {"invoice": invoice, "lines": [], "errors": []}
    if invoice is None:
        context["errors"] = ["Choose an invoice to preview on."]
    elif not form.is_valid():
        context["errors"] = [e for errs in form.errors.values() for e in errs]
    else:
        data = form.cleaned_data
        try:
            context["lines"] = preview_descriptions(
                invoice=invoice,
                fields=data["description_fields"],
                separator=data["description_separator"],
                prefix=data["description_prefix"],
                template=data["description_template"],
            )
        except ValidationError as exc:
            context["errors"] = exc.messages
    return render(request, "finance/_description_preview.html", context)


@login_required
@require_POST
def tenant_switch(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The company menu: work in another of the user's tenants."""
    try:
        company = switch_company(request, int(request.POST.get("company", "0")))
    except ValueError:
        raise PermissionDenied("Choose one of your companies.") from None
    messages.info(request, f"Now working in {company}.")
    return redirect("sync:problems")
