from django.apps import AppConfig


class QboSandboxConfig(AppConfig):
    name = "qbo_sandbox"
    verbose_name = "QuickBooks Online emulator"
    default_auto_field = "django.db.models.BigAutoField"
