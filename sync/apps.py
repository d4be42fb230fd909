from django.apps import AppConfig


class SyncConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sync"
    verbose_name = "QuickBooks sync"

    def ready(self):
        from finance.signals import records_changed
        from sync.services.enqueue import on_records_changed

        records_changed.connect(on_records_changed, dispatch_uid="sync-push-on-change")
