from django.urls import path
from django.views.generic import RedirectView

from sync.views import connection, match, problems, reconciliation, settings_parts, webhook

app_name = "sync"

urlpatterns = [
    path("quickbooks/webhook/", webhook.receive, name="webhook"),
    # Connect flow (sync/views/connection.py)
    path("quickbooks/", connection.page, name="connection"),
    path("quickbooks/connect/", connection.connect, name="connect"),
    path("quickbooks/callback/", connection.callback, name="callback"),
    # Intuit's Reconnect URL (app settings): renew the connection, for `?realmId=`'s tenant.
    path("quickbooks/reconnect/", connection.reconnect, name="reconnect"),
    path("quickbooks/disconnect/", connection.disconnect, name="disconnect"),
    # Problem Sync and Waiting (sync/views/problems.py)
    path("", RedirectView.as_view(pattern_name="sync:problems"), name="home"),
    path("sync/problems/", problems.problems, name="problems"),
    path("sync/problems/bulk/", problems.bulk, name="bulk"),
    path("sync/bulk/<int:job_id>/", problems.bulk_progress, name="bulk_progress"),
    path("sync/resend-descriptions/", problems.resend_descriptions, name="resend_descriptions"),
    path("sync/problems/<str:sync_type>/<int:pk>/", problems.record_detail, name="detail"),
    path(
        "sync/problems/<str:sync_type>/<int:pk>/<str:action>/",
        problems.record_action,
        name="record_action",
    ),
    path("sync/customers/<int:pk>/match/", match.customer_match_page, name="customer_match"),
    path(
        "sync/<str:sync_type>/<int:pk>/number/",
        match.doc_number_match_page,
        name="doc_number_match",
    ),
    path("sync/waiting/", problems.waiting, name="waiting"),
    path("sync/not-syncing/", problems.not_syncing, name="not_syncing"),
    path("sync/resolved/", problems.resolved, name="resolved"),
    # Both books side by side (sync/views/reconciliation.py)
    path("sync/reconciliation/", reconciliation.page, name="reconciliation"),
    path("sync/reconciliation/refresh/", reconciliation.refresh, name="reconciliation_refresh"),
    path(
        "sync/reconciliation/acknowledge/",
        reconciliation.acknowledge,
        name="reconciliation_acknowledge",
    ),
    # QuickBooks cards on Finance → QuickBooks (sync/views/settings_parts.py)
    path("sync/settings/connection/", settings_parts.connection_card, name="connection_card"),
    path("sync/settings/items/", settings_parts.item_mapping, name="item_mapping"),
    path("sync/settings/items/map/", settings_parts.item_map, name="item_map"),
    path(
        "sync/settings/items/create-missing/",
        settings_parts.items_create_missing,
        name="items_create_missing",
    ),
    path("sync/settings/pay-codes/", settings_parts.account_mapping, name="account_mapping"),
    path("sync/settings/pay-codes/map/", settings_parts.account_map, name="account_map"),
    path(
        "sync/settings/pay-codes/create-missing/",
        settings_parts.accounts_create_missing,
        name="accounts_create_missing",
    ),
]
