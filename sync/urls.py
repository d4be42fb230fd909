from django.urls import path

from sync.views import webhook

app_name = "sync"

urlpatterns = [
    path("quickbooks/webhook/", webhook.receive, name="webhook"),
]
