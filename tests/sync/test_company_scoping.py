"""Problem events and bulk jobs belong to a company: one tenant's trend, recently resolved and
bulk progress never count or touch another's records."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from finance.models import Company, Invoice, Membership
from finance.services import ChargeSetSpec, LineSpec
from finance.syncstate import SyncStatus, move
from sync.models import BulkJob, ProblemEvent
from sync.selectors import recently_resolved, trend
from sync.services import actions
from tests.finance.factories import (
    ChargeCodeFactory,
    CustomerFactory,
    InvoiceFactory,
    LoadFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_problems(company):
    other = Company.objects.create(name="Other Carrier Inc")
    ours = InvoiceFactory(lines=1)
    theirs = InvoiceFactory(
        company=other,
        customer=CustomerFactory(company=other),
        charge_sets=[
            ChargeSetSpec(
                load=LoadFactory(company=other),
                lines=[LineSpec(charge_code=ChargeCodeFactory(company=other), rate=Decimal(90))],
            )
        ],
    )
    move(
        Invoice.objects.filter(pk__in=[ours.pk, theirs.pk]),
        SyncStatus.PROBLEM,
        how="test",
        problem_reason="validation",
        problem_since=timezone.now(),
    )
    return ours, theirs, other


def opened_today(company):
    return trend(company=company, days=1)[0]["opened"]


def test_the_trend_counts_this_companys_problems_only(company, two_problems):
    ours, theirs, other = two_problems
    assert set(ProblemEvent.objects.values_list("company_id", "record_id")) == {
        (company.pk, ours.pk),
        (other.pk, theirs.pk),
    }
    assert opened_today(company) == 1 and opened_today(other) == 1


def test_recently_resolved_lists_this_companys_records_only(company, two_problems, finance_user):
    ours, theirs, other = two_problems
    for invoice in (ours, theirs):
        actions.record_clear(record=Invoice.objects.get(pk=invoice.pk), user=finance_user)
    assert [e.record_id for e in recently_resolved(company=company)] == [ours.pk]
    assert [e.record_id for e in recently_resolved(company=other)] == [theirs.pk]


def test_a_bulk_job_keeps_only_its_companys_ids(company, two_problems, finance_user):
    ours, theirs, _ = two_problems
    job = actions.bulk_start(
        company=company,
        action="clear",
        sync_type="invoice",
        ids=[ours.pk, theirs.pk],
        user=finance_user,
    )
    actions.bulk_run(job_id=job.pk)
    assert Invoice.objects.get(pk=ours.pk).sync_status == SyncStatus.CLEARED
    assert Invoice.objects.get(pk=theirs.pk).sync_status == SyncStatus.PROBLEM
    assert (job.company_id, job.record_ids) == (company.pk, [ours.pk])


def test_another_companys_bulk_progress_is_a_404(client, company, two_problems, finance_user):
    _, theirs, other = two_problems
    Membership.objects.create(user=finance_user, company=company)
    job = BulkJob.objects.create(
        company=other, action="clear", record_type="invoice", record_ids=[theirs.pk], total=1
    )
    client.force_login(finance_user)
    assert client.get(reverse("sync:bulk_progress", args=[job.pk])).status_code == 404
