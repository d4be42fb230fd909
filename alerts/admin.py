from django.contrib import admin

from alerts.models import AlertSent, AlertSubscription, TenantAlertWebhook
from alerts.services import mask_url


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("user", "company", "digest", "immediate", "updated_at")
    list_filter = ("company", "digest", "immediate")


@admin.register(TenantAlertWebhook)
class TenantAlertWebhookAdmin(admin.ModelAdmin):
    # The address is a key: admin shows its host only and never a field holding it.
    list_display = ("company", "shown", "enabled", "last_ok_at", "last_error")
    fields = ("company", "shown", "enabled", "last_sent_at", "last_ok_at", "last_error")
    readonly_fields = ("company", "shown", "last_sent_at", "last_ok_at", "last_error")

    @admin.display(description="Address")
    def shown(self, hook: TenantAlertWebhook) -> str:
        return mask_url(hook.url) or "—"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertSent)
class AlertSentAdmin(admin.ModelAdmin):
    list_display = (
        "sent_at",
        "company",
        "kind",
        "condition",
        "problems",
        "recipients",
        "webhook_result",
        "cleared_at",
    )
    list_filter = ("kind", "company")
    readonly_fields = [f.name for f in AlertSent._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False
