from django.conf import settings


def navigation(request):
    """Values every page's layout needs (sandbox link, reconnect banner)."""
    context = {"qbo_sandbox_enabled": settings.QBO_SANDBOX_ENABLED}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from sync.selectors import connection_banner_for

        context["qbo_banner"] = connection_banner_for(user=user)
    return context
