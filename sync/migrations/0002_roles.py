"""Roles as Django groups: Finance works the Problem Sync page and settings; Support works admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from sync.roles import ensure_roles

def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


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
