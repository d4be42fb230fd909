"""Roles as Django groups: Finance works the Problem Sync page and settings; Support works admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

FINANCE = {
    "sync": ["manage_connection", "resolve_problems", "view_syncattempt"],
    "finance": ["change_financesettings", "view_financesettings", "view_invoice", "view_customer",
                "view_payment", "view_creditmemo", "view_chargecode", "change_chargecode"],
}
SUPPORT = {
    "finance": ["override_qb_id", "view_manualaction", "view_invoice", "change_invoice",
                "view_customer", "change_customer", "view_payment", "change_payment",
                "view_creditmemo", "change_creditmemo", "view_chargecode", "change_chargecode",
                "view_load", "view_financesettings"],
    "sync": ["view_syncattempt", "view_webhookevent", "view_quickbooksconnection"],
    "django_celery_beat": ["view_periodictask", "change_periodictask"],
}


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in (("Finance", FINANCE), ("Support", SUPPORT)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codenames in grants.items():
            perms = Permission.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
            group.permissions.add(*perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Finance", "Support"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0001_initial"),
        ("finance", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
