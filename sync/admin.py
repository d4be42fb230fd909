"""Read-only admin for the QuickBooks boundary (Support looks, never edits here).

OAuth tokens are never shown: the connection admin lists explicit fields without them, and
SyncAttempt payloads are the bodies we sent to QuickBooks (no Authorization header in them).
"""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from sync.models import BulkJob, ProblemEvent, QuickBooksConnection, SyncAttempt, WebhookEvent

TOKEN_FIELDS = ("access_token", "refresh_token", "oauth_state")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the engine are evidence: nobody adds, edits or deletes them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(QuickBooksConnection)
class QuickBooksConnectionAdmin(ReadOnlyAdmin):
    list_display = ("company", "company_name", "realm_id", "environment", "status", "updated_at")
    list_filter = ("status", "environment")
    search_fields = ("company__name", "company_name", "realm_id")
    # Explicit, so a token field can never appear through a default "all fields" form.
    fields = (
        "company",
        "realm_id",
        "company_name",
        "environment",
        "status",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "token_generation",
        "connected_at",
        "connected_by",
        "last_error",
        "pull_cursor",
        "last_pull_at",
        "updated_at",
    )
    exclude = TOKEN_FIELDS
    readonly_fields = fields


@admin.register(SyncAttempt)
class SyncAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "record_type",
        "record_id",
        "operation",
        "outcome",
        "http_status",
        "fault_code",
        "duration_ms",
    )
    list_filter = ("outcome", "record_type", "operation", "http_status")
    search_fields = ("record_id", "request_id", "fault_code", "message")
    date_hierarchy = "started_at"


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "entity_name",
        "entity_id",
        "operation",
        "realm_id",
        "deliveries",
        "attempts",
        "next_attempt_at",
        "outcome",
        "processed_at",
    )
    list_filter = (
        "outcome",
        "entity_name",
        "operation",
        ("processed_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("entity_id", "event_key", "realm_id", "error")
    date_hierarchy = "received_at"


@admin.register(ProblemEvent)
class ProblemEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "company", "record_type", "record_id", "kind", "reason", "how", "user")
    list_filter = ("company", "kind", "record_type", "reason")
    search_fields = ("record_id", "reason", "user__username")
    list_select_related = ("user", "company")
    date_hierarchy = "at"


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at", "company", "action", "record_type", "total", "done", "failed", "user"
    )  # fmt: skip
    list_filter = ("company", "action", "record_type")
    search_fields = ("user__username",)
    list_select_related = ("user", "company")
