"""The Finance and Support roles as Django groups (created by migration 0002_roles).

Each synced record type (finance.registry) is readable by both roles and editable by Support
in admin; Finance maps the types that start unmapped (charge codes → items).
"""

from typing import Any

from finance.registry import RECORD_TYPES

_SYNCED = [rt.admin_name for rt in RECORD_TYPES.values()]
FINANCE = {
    "sync": ["manage_connection", "resolve_problems", "view_syncattempt"],
    "finance": ["change_financesettings", "view_financesettings"]
    + [f"view_{name}" for name in _SYNCED]
    + [f"change_{rt.admin_name}" for rt in RECORD_TYPES.values() if rt.starts_unmapped],
}
SUPPORT = {
    "finance": ["override_qb_id", "view_manualaction", "view_load", "view_financesettings"]
    + [f"{verb}_{name}" for name in _SYNCED for verb in ("view", "change")],
    "sync": ["view_syncattempt", "view_webhookevent", "view_quickbooksconnection"],
    "django_celery_beat": ["view_periodictask", "change_periodictask"],
    # Sign-in lock-outs (django-axes): see who is locked, unlock by deleting the attempt.
    "axes": ["view_accessattempt", "delete_accessattempt", "view_accesslog"],
}
ROLES = {"Finance": FINANCE, "Support": SUPPORT}


def ensure_roles(group_model: Any, permission_model: Any) -> None:
    """Create or complete both groups (idempotent; models passed in so migrations can use it)."""
    for name, grants in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, codenames in grants.items():
            perms = permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
            group.permissions.add(*perms)
