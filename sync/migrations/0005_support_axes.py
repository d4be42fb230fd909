"""Support unlocks sign-in lock-outs: grant the django-axes permissions added to sync/roles.py.

Migration 0002 ran before axes was installed, so existing databases need the grant again; it
runs after axes' own migrations so its permissions exist. ensure_roles only adds, never removes.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from sync.roles import ensure_roles


def grant_axes(apps, schema_editor):
    axes = apps.get_app_config("axes")
    axes.models_module = True
    create_permissions(axes, apps=apps, verbosity=0)
    axes.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0004_webhook_attempts"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(grant_axes, migrations.RunPython.noop)]
