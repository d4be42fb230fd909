from django.conf import settings


def navigation(request):
    """Values every page's layout needs (sandbox link, reconnect banner)."""
    context = {"qbo_sandbox_enabled": settings.QBO_SANDBOX_ENABLED}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from django.core.exceptions import PermissionDenied

        from finance.tenancy import companies_for, current_company
        from sync.selectors import connection_banner_for

        try:
            company = current_company(request)
        except PermissionDenied:
            return context  # a user of no company: the page itself says so
        context["tenant"] = company
        context["tenants"] = list(companies_for(user)[:50])
        context["qbo_banner"] = connection_banner_for(company=company)
    return context
