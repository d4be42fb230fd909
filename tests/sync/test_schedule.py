"""Finance settings' sync schedule is what the sweep does, per company: with push on change off,
new and changed records wait for the company's interval; retries keep their own time."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from finance.models import Customer, FinanceSettings
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection
from sync.services.sweep import dispatch_due
from tests.finance.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scheduled(qbo):
    FinanceSettings.objects.filter(company_id=qbo.connection.company_id).update(
        push_on_change=False, schedule_minutes=10
    )
    return qbo.connection


def new_customer():
    customer = CustomerFactory()
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.PENDING
    return customer


def test_with_push_on_change_off_new_records_wait_for_the_interval(scheduled):
    new_customer()
    assert dispatch_due() == {"customer": 1}  # the first pass after connecting is on time

    later = new_customer()
    assert dispatch_due() == {}  # every 15 s the beat ticks; the interval has not come
    assert Customer.objects.get(pk=later.pk).sync_status == SyncStatus.PENDING

    QuickBooksConnection.objects.filter(pk=scheduled.pk).update(
        last_scheduled_at=timezone.now() - timedelta(minutes=10, seconds=1)
    )
    assert dispatch_due() == {"customer": 1}


def test_a_due_retry_does_not_wait_for_the_interval(scheduled):
    new_customer()
    dispatch_due()
    retry = new_customer()
    Customer.objects.filter(pk=retry.pk).update(
        sync_status=SyncStatus.RETRY_WAIT, next_retry_at=timezone.now() - timedelta(seconds=1)
    )
    assert dispatch_due() == {"customer": 1}


def test_with_push_on_change_on_every_tick_sends(qbo):
    new_customer()
    assert dispatch_due() == {"customer": 1}
    new_customer()
    assert dispatch_due() == {"customer": 1}


def test_the_page_says_what_the_schedule_does(client, finance_user, company):
    client.force_login(finance_user)
    url = reverse("finance:quickbooks")
    on = client.get(url).content.decode()
    assert "each change goes to QuickBooks at once" in on  # not "every 5 minutes" when it is not

    FinanceSettings.objects.filter(company=company).update(push_on_change=False)
    off = client.get(url).content.decode()
    assert "new and changed records go to QuickBooks every 5 minutes" in off
    assert "every 15 s" in off
