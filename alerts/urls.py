from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    # The card on Finance → QuickBooks (loaded with htmx) and its actions.
    path("settings/", views.card, name="card"),
    path("settings/subscription/", views.subscription, name="subscription"),
    path("settings/webhook/", views.webhook, name="webhook"),
    path("settings/webhook/test/", views.webhook_test, name="webhook_test"),
    # What every link in an alert opens: work in the alert's tenant, then go to `?next=`.
    path("open/<int:company_id>/", views.open_in_company, name="open"),
]
