from django.apps import AppConfig


class SyncConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sync"
    verbose_name = "QuickBooks sync"

    def ready(self) -> None:
        from finance.signals import records_changed, sweep_wanted
        from finance.syncstate import problem_changed
        from sync.services.enqueue import on_records_changed, on_sweep_wanted
        from sync.services.problem_log import on_problem_changed

        records_changed.connect(on_records_changed, dispatch_uid="sync-push-on-change")
        problem_changed.connect(on_problem_changed, dispatch_uid="sync-problem-events")
        sweep_wanted.connect(on_sweep_wanted, dispatch_uid="sync-sweep-wanted")
