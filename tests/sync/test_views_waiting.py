"""Waiting: everything still owed to QuickBooks is listed, problems and synced ones are not."""

from django.urls import reverse

from finance.syncstate import SyncStatus
from tests.sync.uifactories import problem_invoices

URL = reverse("sync:waiting")


def test_it_forbids_outsiders(client, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 403


def test_it_lists_pending_retrying_and_in_flight(client, finance_user, company):
    owed = [
        problem_invoices(1, status=status)[0]
        for status in (SyncStatus.PENDING, SyncStatus.RETRY_WAIT, SyncStatus.IN_FLIGHT)
    ]
    [problem] = problem_invoices(1)
    [synced] = problem_invoices(1, status=SyncStatus.SYNCED)
    client.force_login(finance_user)
    html = client.get(URL).content.decode()
    assert all(f"waiting-invoice-{r.pk}" in html for r in owed)
    assert f"waiting-invoice-{problem.pk}" not in html
    assert f"waiting-invoice-{synced.pk}" not in html


def test_it_shows_support_the_list(client, support_user, company):
    client.force_login(support_user)
    assert client.get(URL, {"type": "payment"}).status_code == 200
