"""Connect / disconnect QuickBooks (Finance role). The card lives on Finance → QuickBooks."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from sync.selectors import connection_for_company
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
