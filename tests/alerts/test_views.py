"""The Alerts card on Finance → QuickBooks, its actions, and the link every alert carries."""

import pytest
from django.urls import reverse

from alerts import services
from alerts.models import AlertSubscription, TenantAlertWebhook
from finance.models import Membership
from finance.tenancy import SESSION_KEY
from tests.alerts.conftest import member

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_settings_page_loads_the_card(client, tenant_a, both):
    client.force_login(both)
    page = client.get(reverse("finance:quickbooks"))
    assert reverse("alerts:card").encode() in page.content
    card = client.get(reverse("alerts:card"), **HTMX)
    assert b'data-testid="alerts-digest" checked' in card.content


def test_a_member_opts_in_and_out(client, tenant_a):
    user = member("nora", tenant_a)
    client.force_login(user)
    data = {"company": tenant_a.pk, "digest": "on"}
    answer = client.post(reverse("alerts:subscription"), data, **HTMX)
    assert b"daily digest" in answer.content
    sub = AlertSubscription.objects.get(user=user, company=tenant_a)
    assert (sub.digest, sub.immediate) == (True, False)
    client.post(reverse("alerts:subscription"), {"company": tenant_a.pk}, **HTMX)
    sub.refresh_from_db()
    assert (sub.digest, sub.immediate) == (False, False)


def test_the_opt_in_refuses_a_user_outside_the_company(client, tenant_a, tenant_b):
    outsider = member("bea", tenant_b)  # Finance elsewhere, not in tenant_a
    client.force_login(outsider)
    session = client.session
    session[SESSION_KEY] = tenant_a.pk  # a stale or forged choice: tenancy falls back to B
    session.save()
    answer = client.post(reverse("alerts:subscription"), {"company": tenant_a.pk, "digest": "on"})
    assert answer.status_code == 403
    assert not AlertSubscription.objects.filter(company=tenant_a).exists()
    with pytest.raises(Exception, match="not a member"):
        services.subscription_set(user=outsider, company=tenant_a, digest=True, immediate=True)


def test_a_user_without_the_finance_role_cannot_open_the_card(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("alerts:card")).status_code == 403


def test_support_in_the_tenant_cannot_set_the_webhook(client, tenant_a):
    user = member("sid", tenant_a, role=Membership.Role.SUPPORT)
    client.force_login(user)
    data = {"company": tenant_a.pk, "url": "https://hooks.example.com/x", "enabled": "on"}
    assert client.post(reverse("alerts:webhook"), data).status_code == 403
    assert not TenantAlertWebhook.objects.exists()


def test_the_webhook_is_saved_and_shown_by_its_host_only(client, tenant_a, both):
    client.force_login(both)
    data = {"company": tenant_a.pk, "url": "https://hooks.example.com/T0/B0/k3y", "enabled": "on"}
    answer = client.post(reverse("alerts:webhook"), data, **HTMX)
    assert (
        b"https://hooks.example.com/\xe2\x80\xa6" in answer.content and b"k3y" not in answer.content
    )
    assert TenantAlertWebhook.objects.get(company=tenant_a).url.endswith("/k3y")
    bad = client.post(reverse("alerts:webhook"), {**data, "url": "http://evil.example/"}, **HTMX)
    assert b"must start with https://" in bad.content
    assert TenantAlertWebhook.objects.get(company=tenant_a).url.endswith("/k3y")  # kept


def test_the_alert_link_opens_the_filtered_view_in_its_tenant(client, tenant_a, tenant_b, both):
    client.force_login(both)
    link = services.tenant_link(
        company=tenant_b, path=services.problems_path(sync_type="invoice", reason="duplicate_name")
    )
    answer = client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert answer.status_code == 302
    assert answer["Location"] == "/sync/problems/?type=invoice&reason=duplicate_name"
    assert client.session[SESSION_KEY] == tenant_b.pk


def test_the_alert_link_refuses_other_tenants_and_other_sites(client, tenant_a, tenant_b):
    user = member("alice", tenant_a)
    client.force_login(user)
    assert client.get(reverse("alerts:open", args=[tenant_b.pk])).status_code == 403
    away = client.get(reverse("alerts:open", args=[tenant_a.pk]) + "?next=https://evil.example/")
    assert away["Location"] == reverse("sync:problems")
