"""The Alerts card of Finance → QuickBooks (loaded into that page with htmx, as sync's cards
are) and the link every alert carries."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from alerts import selectors, services
from alerts.forms import SubscriptionForm, WebhookForm
from finance.http import AuthenticatedHttpRequest
from finance.models import Company
from finance.tenancy import may_write, switch_company
from sync.views.access import check_settings_editor, current_company


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _may_manage_webhook(request: AuthenticatedHttpRequest, company: Company) -> bool:
    """Finance settings editors who may write in this tenant (not its Support role)."""
    return request.user.has_perm("finance.change_financesettings") and may_write(
        request.user, company
    )


def _context(request: AuthenticatedHttpRequest, company: Company, **extra: Any) -> dict[str, Any]:
    hook = selectors.webhook_for(company=company)
    return {
        "company": company,
        "member": selectors.is_member(request.user, company),
        "subscription": selectors.subscription_for(user=request.user, company=company),
        "email": request.user.email,
        "webhook": hook,
        "webhook_shown": services.mask_url(hook.url) if hook and hook.url else "",
        "can_manage_webhook": _may_manage_webhook(request, company),
        "recent": list(selectors.recent_alerts(company=company)),
        "digest_hour": settings.ALERTS_DIGEST_HOUR,
        "time_zone": settings.TIME_ZONE,
        **extra,
    }


def _answer(
    request: AuthenticatedHttpRequest, company: Company, *, ok: str = "", error: str = ""
) -> HttpResponse:
    """htmx: the card again, with the outcome in it; a plain POST: a toast and the page."""
    if _is_htmx(request):
        return render(
            request, "alerts/_card.html", _context(request, company, notice=ok, error=error)
        )
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
    return redirect(reverse("finance:quickbooks") + "#alerts")


def _company_of_form(request: AuthenticatedHttpRequest, posted: int | None) -> Company:
    company = current_company(request)
    if posted != company.pk:
        raise PermissionDenied(
            f"This card was for another company; you now work in {company}. Reload the page."
        )
    return company


@login_required
@require_GET
def card(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    context = _context(request, current_company(request))
    template = "alerts/_card.html" if _is_htmx(request) else "alerts/card.html"
    return render(request, template, context)


@login_required
@require_POST
def subscription(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    form = SubscriptionForm(request.POST)
    if not form.is_valid():
        return _answer(request, current_company(request), error="Choose your alerts again.")
    company = _company_of_form(request, form.cleaned_data["company"])
    chosen = services.subscription_set(
        user=request.user,
        company=company,
        digest=form.cleaned_data["digest"],
        immediate=form.cleaned_data["immediate"],
    )
    parts = [
        name
        for name, on in (("daily digest", chosen.digest), ("immediate alerts", chosen.immediate))
        if on
    ]
    ok = f"Alerts for {company} saved: " + (" and ".join(parts) if parts else "none") + "."
    if parts and not request.user.email:
        return _answer(
            request,
            company,
            error=ok + " Your account has no e-mail address: ask support to add one.",
        )
    return _answer(request, company, ok=ok)


@login_required
@require_POST
def webhook(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        return _answer(request, current_company(request), error=f"Webhook not saved: {errors}")
    company = _company_of_form(request, form.cleaned_data["company"])
    if not _may_manage_webhook(request, company):
        raise PermissionDenied(f"Only the Finance role in {company} sets its alert webhook.")
    data = form.cleaned_data
    try:
        hook = services.webhook_set(
            company=company,
            user=request.user,
            url=data["url"],
            enabled=data["enabled"],
            remove=data["remove"],
        )
    except ValidationError as exc:
        return _answer(request, company, error="Webhook not saved: " + " ".join(exc.messages))
    if data["remove"]:
        return _answer(request, company, ok="Webhook removed.")
    state = "on" if hook.enabled else "off"
    return _answer(request, company, ok=f"Webhook saved ({services.mask_url(hook.url)}, {state}).")


@login_required
@require_POST
def webhook_test(request: AuthenticatedHttpRequest) -> HttpResponse:
    check_settings_editor(request)
    company = current_company(request)
    if not _may_manage_webhook(request, company):
        raise PermissionDenied(f"Only the Finance role in {company} sends test alerts.")
    row = services.test_alert_send(company=company, user=request.user)
    said = []
    if row.webhook_result:
        said.append(f"webhook: {row.webhook_result}")
    said.append(
        f"e-mail to {request.user.email}" if row.recipients else "no e-mail (none on your account)"
    )
    if row.error:
        return _answer(request, company, error="Test alert: " + row.error)
    if row.webhook_result.startswith("failed"):
        return _answer(request, company, error="Test alert sent; " + "; ".join(said) + ".")
    return _answer(request, company, ok="Test alert sent: " + "; ".join(said) + ".")


@login_required
@require_GET
def open_in_company(request: AuthenticatedHttpRequest, company_id: int) -> HttpResponse:
    """An alert's link: work in its tenant (only one of the user's own), then open `next`.
    A GET changes the session's working tenant here on purpose: a link in a mail can only GET,
    and the tenant is a view preference among the user's own, not data."""
    company = switch_company(request, company_id)
    target = request.GET.get("next", "")
    safe = target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    messages.info(request, f"Working in {company}.")
    return redirect(target if safe else reverse("sync:problems"))
