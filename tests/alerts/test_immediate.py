"""Immediate alerts: once when a condition begins, again only after it cleared and came back."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts import services
from sync.models import ApiUsage, QuickBooksConnection
from sync.services.usage import month_start
from tests.alerts.conftest import connected

pytestmark = pytest.mark.django_db


def passes(n=2, **kwargs):
    for _ in range(n):
        services.immediate_check(**kwargs)


def subjects():
    return [m.subject for m in mail.outbox]


def test_needs_reconnect_is_told_once_per_onset(tenant_a, both):
    connection = connected(tenant_a, status=QuickBooksConnection.Status.NEEDS_RECONNECT)
    passes()
    assert subjects() == [f"{tenant_a}: QuickBooks needs reconnecting"]
    assert (
        f"/alerts/open/{tenant_a.pk}/" in mail.outbox[0].body
        and "%23connection" in mail.outbox[0].body
    )

    QuickBooksConnection.objects.filter(pk=connection.pk).update(status="connected")
    passes()
    QuickBooksConnection.objects.filter(pk=connection.pk).update(status="needs_reconnect")
    passes()
    # Why: it cleared and came back, so it is a new onset worth telling; repeats are not.
    assert len(mail.outbox) == 2


def test_token_expiry_within_the_window_is_told_once(tenant_a, both, settings):
    settings.QBO_TOKEN_EXPIRY_WARNING_DAYS = 30
    soon = timezone.now() + timedelta(days=12)
    connection = connected(tenant_a, refresh_token_hard_expires_at=soon)
    passes()
    assert subjects() == [f"{tenant_a}: QuickBooks authorization ending soon"]
    assert "ends in 12 day(s)" in mail.outbox[0].body

    # A reconnect renews it (cleared); an expiry near again is told again.
    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        refresh_token_hard_expires_at=timezone.now() + timedelta(days=1800)
    )
    passes()
    QuickBooksConnection.objects.filter(pk=connection.pk).update(refresh_token_hard_expires_at=soon)
    passes()
    assert len(mail.outbox) == 2


def test_read_budget_at_the_warning_share_is_told_once_a_month(tenant_a, tenant_b, both, settings):
    settings.QBO_COREPLUS_ALLOWANCE = 1000
    settings.QBO_COREPLUS_WARN_FRACTION = 0.8
    connected(tenant_a)
    connected(tenant_b)
    usage = ApiUsage.objects.create(
        company=tenant_a, month=month_start(), purpose="safety_pull", coreplus=799
    )
    passes()
    assert mail.outbox == []  # 79.9 %: not yet

    ApiUsage.objects.filter(pk=usage.pk).update(coreplus=800)
    passes()
    # Why: the allowance is the whole workspace's, so every connected tenant hears of it, once.
    assert sorted(subjects()) == sorted(
        [f"{tenant_a}: QuickBooks read budget at 80%", f"{tenant_b}: QuickBooks read budget at 80%"]
    )
    next_month = timezone.now() + timedelta(days=32)
    ApiUsage.objects.create(
        company=tenant_b, month=month_start(next_month), purpose="safety_pull", coreplus=900
    )
    passes(now=next_month)  # a new month at the warning share again: a new onset
    assert len(mail.outbox) == 4


def test_nothing_is_mailed_without_opt_in_but_the_condition_is_recorded(tenant_a, both):
    both.alert_subscriptions.update(immediate=False)
    connected(tenant_a, status=QuickBooksConnection.Status.NEEDS_RECONNECT)
    passes()
    assert mail.outbox == []
