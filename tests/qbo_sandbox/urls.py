"""Only the emulator, so these tests do not depend on the rest of the project's URLs."""

from django.urls import include, path

urlpatterns = [path("qbo-sandbox/", include("qbo_sandbox.urls"))]
