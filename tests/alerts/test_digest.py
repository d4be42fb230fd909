"""The daily digest: per tenant, only what is new, counted per type and reason, linked."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from django.utils import timezone

from alerts import services
from alerts.models import AlertSent
from tests.alerts.conftest import member
from tests.finance.factories import CustomerFactory
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db


def problems(company, n, *, reason="missing_item_mapping", **extra):
    return [park(CustomerFactory(company=company), reason=reason, **extra) for _ in range(n)]


def digest_to(address, company):
    return [m for m in mail.outbox if m.to == [address] and m.subject.startswith(str(company))]


def test_it_sends_each_tenant_its_own_counts_and_links(tenant_a, tenant_b, both, settings):
    settings.SITE_URL = "https://tms.example"
    only_a = member("alice", tenant_a)
    services.subscription_set(user=only_a, company=tenant_a, digest=True, immediate=False)
    problems(tenant_a, 2)
    problems(tenant_a, 1, reason="duplicate_name")
    problems(tenant_b, 1, reason="duplicate_name")

    services.digests_send_due()

    # Why: a member of two tenants gets one digest per tenant, each with that tenant's figures.
    [a_digest] = digest_to("fiona@trucking.example", tenant_a)
    [b_digest] = digest_to("fiona@trucking.example", tenant_b)
    assert "3 new QuickBooks sync problems" in a_digest.subject
    assert "1 new QuickBooks sync problem" in b_digest.subject
    assert len(digest_to("alice@trucking.example", tenant_a)) == 1 and len(mail.outbox) == 3
    # Why: each reason links straight to Problem Sync filtered to it, in the digest's tenant.
    link = next(
        line.strip() for line in a_digest.body.splitlines() if "missing_item_mapping" in line
    )
    parsed = urlparse(link)
    assert (parsed.scheme, parsed.netloc, parsed.path) == (
        "https",
        "tms.example",
        f"/alerts/open/{tenant_a.pk}/",
    )
    assert parse_qs(parsed.query)["next"] == [
        "/sync/problems/?type=customer&reason=missing_item_mapping"
    ]
    assert "Customers: 3" in a_digest.body and f"/alerts/open/{tenant_b.pk}/" in b_digest.body
    html, _ = a_digest.alternatives[0]
    assert "A charge code has no QuickBooks item" in html


def test_it_sends_nothing_without_opt_in(tenant_a):
    member("nora", tenant_a)  # a member who never opted in
    problems(tenant_a, 2)
    assert services.digests_send_due() == [] and mail.outbox == []


def test_it_sends_nothing_when_nothing_is_new(tenant_a, both):
    problems(tenant_a, 1, days=3)  # older than the first digest's window
    services.digests_send_due()
    # Why: a day without new problems is quiet, but the slot is recorded (the next one starts there).
    assert mail.outbox == []
    assert AlertSent.objects.filter(company=tenant_a, kind="digest", problems=0).exists()


def test_it_does_not_send_twice_and_next_day_only_the_new(tenant_a, both):
    problems(tenant_a, 2)
    now = timezone.now()
    services.digests_send_due(now=now)
    services.digests_send_due(now=now + timedelta(minutes=5))  # the next beat pass
    assert len(digest_to("fiona@trucking.example", tenant_a)) == 1

    problems(tenant_a, 1, reason="duplicate_name", problem_since=now + timedelta(hours=3))
    services.digests_send_due(now=now + timedelta(days=1))
    second = digest_to("fiona@trucking.example", tenant_a)[-1]
    # Why: the next digest holds only the problem that began after the first digest.
    assert "1 new QuickBooks sync problem" in second.subject and "duplicate_name" in second.body


def test_a_problem_resolved_before_the_digest_is_not_counted(tenant_a, both):
    [customer] = problems(tenant_a, 1)
    park(customer, status="synced")
    services.digests_send_due()
    assert mail.outbox == []


def test_a_member_who_left_gets_no_more_digests(tenant_a, tenant_b, both):
    both.memberships.filter(company=tenant_b).delete()
    problems(tenant_b, 1)
    services.digests_send_due()
    assert digest_to("fiona@trucking.example", tenant_b) == []
