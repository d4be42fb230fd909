"""The Finance and Support roles as Django groups (created by migration 0002_roles)."""

FINANCE = {
    "sync": ["manage_connection", "resolve_problems", "view_syncattempt"],
    "finance": ["change_financesettings", "view_financesettings", "view_invoice", "view_customer",
                "view_payment", "view_creditmemo", "view_chargecode", "change_chargecode"],
}  # fmt: skip
SUPPORT = {
    "finance": ["override_qb_id", "view_manualaction", "view_invoice", "change_invoice",
                "view_customer", "change_customer", "view_payment", "change_payment",
                "view_creditmemo", "change_creditmemo", "view_chargecode", "change_chargecode",
                "view_load", "view_financesettings"],
    "sync": ["view_syncattempt", "view_webhookevent", "view_quickbooksconnection"],
    "django_celery_beat": ["view_periodictask", "change_periodictask"],
    # Sign-in lock-outs (django-axes): see who is locked, unlock by deleting the attempt.
    "axes": ["view_accessattempt", "delete_accessattempt", "view_accesslog"],
}  # fmt: skip
ROLES = {"Finance": FINANCE, "Support": SUPPORT}


def ensure_roles(group_model, permission_model) -> None:
    """Create or complete both groups (idempotent; models passed in so migrations can use it)."""
    for name, grants in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, codenames in grants.items():
            perms = permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
            group.permissions.add(*perms)
