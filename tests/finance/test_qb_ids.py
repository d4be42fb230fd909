"""finance.qb_ids services directly: verification fallbacks and permission."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from finance.models import ManualAction
from finance.qb_ids import qb_id_override, qb_id_remove
from finance.syncstate import SyncStatus
from tests.finance.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def broken_verifier(*, record, qb_id):
    raise ConnectionError("QuickBooks unreachable")


def test_override_without_a_verifier_says_it_skipped_the_check(settings, company, support_user):
    settings.QB_ID_VERIFIER = ""
    customer = CustomerFactory()

    customer = qb_id_override(record=customer, new_qb_id="0058", user=support_user)

    # Leading zeros are the same QuickBooks object; the audit says nothing was checked.
    assert customer.qb_id == "58" and customer.synced_version == customer.version
    assert "check skipped" in ManualAction.objects.get().note


def test_an_unloadable_verifier_is_skipped_not_fatal(settings, company, support_user):
    settings.QB_ID_VERIFIER = "nowhere.to_be.found"

    customer = qb_id_override(record=CustomerFactory(), new_qb_id="7", user=support_user)

    assert customer.sync_status == SyncStatus.SYNCED
    assert "could not be loaded" in ManualAction.objects.get().note


def test_a_failing_verifier_refuses(settings, company, support_user):
    settings.QB_ID_VERIFIER = "tests.finance.test_qb_ids.broken_verifier"

    with pytest.raises(ValidationError, match="Could not check"):
        qb_id_override(record=CustomerFactory(), new_qb_id="7", user=support_user)


def test_users_without_the_permission_are_refused(company, finance_user):
    with pytest.raises(PermissionDenied):
        qb_id_override(record=CustomerFactory(), new_qb_id="7", user=finance_user, verify=False)


def test_remove_bumps_version_and_resets_synced_version(company, support_user):
    customer = CustomerFactory()
    customer.qb_id, customer.sync_status, customer.synced_version = "9", SyncStatus.SYNCED, 1
    customer.save()

    customer = qb_id_remove(record=customer, user=support_user)

    assert (customer.version, customer.synced_version) == (2, 0)


def test_remove_refuses_a_record_without_an_id(company, support_user):
    with pytest.raises(ValidationError, match="has no QuickBooks ID"):
        qb_id_remove(record=CustomerFactory(display_name="Acme"), user=support_user)


def test_records_in_flight_are_refused(company, support_user):
    customer = CustomerFactory()
    customer.qb_id, customer.sync_status = "9", SyncStatus.IN_FLIGHT
    customer.save()

    with pytest.raises(ValidationError, match="right now"):
        qb_id_remove(record=customer, user=support_user)
