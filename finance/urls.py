from django.urls import path

from finance import views

app_name = "finance"

urlpatterns = [
    path("quickbooks/", views.quickbooks, name="quickbooks"),
    path("quickbooks/description-preview/", views.description_preview, name="description_preview"),
    path("company/switch/", views.tenant_switch, name="tenant_switch"),
]
