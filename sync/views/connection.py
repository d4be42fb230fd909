"""Connect / disconnect QuickBooks (Finance role). The card lives on Finance → QuickBooks."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from finance.tenancy import may_write, switch_company
from sync.selectors import company_for_realm, connection_for_company
from sync.services import connection as connection_services
from sync.views.access import current_company

MANAGE = "sync.manage_connection"


def _settings_page() -> str:
    return reverse("finance:quickbooks") + "#connection"


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_GET
def page(request: AuthenticatedHttpRequest) -> HttpResponse:
    return redirect(_settings_page())


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def connect(request: AuthenticatedHttpRequest) -> HttpResponse:
    connection = connection_for_company(company=current_company(request))
    reset = request.POST.get("reset_mappings") == "1"
    return redirect(connection_services.authorize_url(connection=connection, reset_mappings=reset))


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_GET
def reconnect(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The app's Reconnect URL (Intuit app settings): QuickBooks sends the user here when the
    connection must be renewed, often with the QuickBooks company as `realmId`. A GET (Intuit
    links to it) that starts the consent flow for that company's tenant, made current as the
    tenant menu would; without `realmId`, for the current tenant."""
    realm_id = request.GET.get("realmId", "").strip()
    if realm_id:
        company = company_for_realm(user=request.user, realm_id=realm_id)
        if company is None:
            # Another tenant's realm reads the same as an unknown one: nothing to learn here.
            context = {"realm_id": realm_id[:32]}
            return render(request, "sync/reconnect_unknown_realm.html", context, status=404)
        switch_company(request, company.pk)
    company = current_company(request)
    if not may_write(request.user, company):
        raise PermissionDenied("Your role in this company does not include reconnecting.")
    connection = connection_for_company(company=company)
    return redirect(connection_services.authorize_url(connection=connection))


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_GET
def callback(request: AuthenticatedHttpRequest) -> HttpResponse:
    connection = connection_for_company(company=current_company(request))
    realm_before, state = connection.realm_id, request.GET.get("state", "")
    try:
        connection = connection_services.complete_callback(
            connection=connection,
            user=request.user,
            code=request.GET.get("code", ""),
            state=state,
            realm_id=request.GET.get("realmId", ""),
            error=request.GET.get("error", ""),
        )
    except connection_services.ConnectError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_settings_page())
    messages.success(
        request,
        f"Connected to QuickBooks company {connection.company_name or connection.realm_id}.",
    )
    if state.endswith(connection_services.RESET_SUFFIX) and realm_before == connection.realm_id:
        messages.info(request, "That is the company already linked: no QuickBooks ID was reset.")
    return redirect(_settings_page())


@login_required
@permission_required(MANAGE, raise_exception=True)
@require_POST
def disconnect(request: AuthenticatedHttpRequest) -> HttpResponse:
    connection = connection_for_company(company=current_company(request))
    connection = connection_services.disconnect(connection=connection, user=request.user)
    messages.success(
        request, "Disconnected from QuickBooks. QuickBooks IDs are kept for when you reconnect."
    )
    if not connection.revoke_confirmed:
        messages.warning(
            request,
            "QuickBooks did not confirm that it revoked this app's access. To be sure, remove "
            "the app under Apps → My apps in QuickBooks.",
        )
    return redirect(_settings_page())
