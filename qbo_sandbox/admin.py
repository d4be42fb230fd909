from django.contrib import admin

from .models import (
    Entity,
    SandboxApp,
    SandboxCompany,
    SandboxUser,
    Token,
    UsageCounter,
    WebhookDelivery,
    WebhookEvent,
)


@admin.register(SandboxCompany)
class SandboxCompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "realm_id", "throttle_enabled", "latency_ms", "error_rate", "created")
    search_fields = ("name", "realm_id")


@admin.register(SandboxUser)
class SandboxUserAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "all_companies", "last_signin", "created")
    search_fields = ("email", "name")
    filter_horizontal = ("companies",)
    # The hash is shown, never edited here: `qbo_sandbox create-user` sets passwords.
    readonly_fields = ("password", "last_signin", "created")


@admin.register(SandboxApp)
class SandboxAppAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "client_id",
        "webhook_url",
        "webhook_format",
        "webhook_content_type",
        "coreplus_allowance",
        "created",
    )


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = (
        "app",
        "company",
        "created",
        "access_expires_at",
        "hard_expires_at",
        "rotated_at",
        "revoked",
    )
    list_filter = ("revoked",)


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = (
        "entity_type",
        "qbo_id",
        "company",
        "label",
        "sync_token",
        "active",
        "deleted",
        "updated",
    )
    list_filter = ("entity_type", "deleted", "active")
    search_fields = ("name_key", "doc_number")
    list_select_related = ("company",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("app", "company", "status", "attempts", "next_attempt_at", "last_status")
    list_filter = ("status",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("app", "company", "webhook_format", "created", "due_at", "delivery")


@admin.register(UsageCounter)
class UsageCounterAdmin(admin.ModelAdmin):
    list_display = ("app", "company", "month", "core", "coreplus", "coreplus_read",
                    "coreplus_query", "coreplus_cdc")  # fmt: skip
    list_filter = ("month",)
