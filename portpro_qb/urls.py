from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from portpro_qb.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Browsers and monitors ask for /favicon.ico whatever the page's <link rel="icon"> says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("finance/", include("finance.urls")),
    path("alerts/", include("alerts.urls")),
    path("", include("sync.urls")),
]

if settings.QBO_SANDBOX_ENABLED:
    urlpatterns.insert(0, path("qbo-sandbox/", include("qbo_sandbox.urls")))
