"""Problem Sync page: who may see it, what a row shows, filters, and a constant query count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from finance.models import ChargeSet
from finance.syncstate import SyncStatus
from tests.sync.uifactories import CustomerFactory, park, problem_invoices

URL = reverse("sync:problems")


def test_it_sends_anonymous_users_to_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_it_forbids_users_without_a_role(client, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 403


def test_it_shows_finance_the_reason_hint_and_fix_link(client, finance_user, company):
    [invoice] = problem_invoices(1)
    client.force_login(finance_user)
    response = client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    # The clerk reads plain words, and the row links to the mapping section that fixes it.
    assert f'id="row-invoice-{invoice.pk}"' in html
    assert "A charge code has no QuickBooks item" in html
    assert reverse("finance:quickbooks") + "#mapping" in html
    # Intuit's code stays one hover away.
    assert "Intuit code 6000" in html


def test_it_shows_support_the_page_without_action_buttons(client, support_user, company):
    problem_invoices(1)
    client.force_login(support_user)
    response = client.get(URL)
    assert response.status_code == 200
    assert "Clear without sync" not in response.content.decode()


def test_it_lets_the_superuser_in(client, superuser, company):
    client.force_login(superuser)
    assert client.get(URL).status_code == 200


def test_it_counts_problems_per_tab(client, finance_user, company):
    problem_invoices(2)
    park(CustomerFactory(), reason="duplicate_name")
    client.force_login(finance_user)
    html = client.get(URL).content.decode()
    assert 'data-testid="count-invoice">2<' in html
    assert 'data-testid="count-customer">1<' in html


def test_it_searches_by_container_number(client, finance_user, company):
    first, second = problem_invoices(2)
    container = ChargeSet.objects.filter(invoice=first).first().load.container_number
    client.force_login(finance_user)
    html = client.get(URL, {"q": container}).content.decode()
    assert f"row-invoice-{first.pk}" in html
    assert f"row-invoice-{second.pk}" not in html


def test_it_filters_by_reason_and_age(client, finance_user, company):
    old = park(problem_invoices(1)[0], days=10, reason="validation")
    new = park(problem_invoices(1)[0], days=0, reason="validation")
    other = park(problem_invoices(1)[0], days=10, reason="duplicate_doc_number")
    client.force_login(finance_user)
    html = client.get(URL, {"reason": "validation", "age": "7d"}).content.decode()
    assert f"row-invoice-{old.pk}" in html
    assert f"row-invoice-{new.pk}" not in html and f"row-invoice-{other.pk}" not in html


def test_it_sorts_by_attempts(client, finance_user, company):
    few = park(problem_invoices(1)[0], attempts=1)
    many = park(problem_invoices(1)[0], attempts=7)
    client.force_login(finance_user)
    html = client.get(URL, {"sort": "-attempts"}).content.decode()
    assert html.index(f"row-invoice-{many.pk}") < html.index(f"row-invoice-{few.pk}")


def test_it_leaves_out_records_that_are_not_problems(client, finance_user, company):
    [waiting] = problem_invoices(1, status=SyncStatus.RETRY_WAIT)
    client.force_login(finance_user)
    assert f"row-invoice-{waiting.pk}" not in client.get(URL).content.decode()


def _count_queries(client):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL)
    assert response.status_code == 200
    return len(ctx)


def test_it_runs_the_same_number_of_queries_for_5_and_50_rows(client, finance_user, company):
    problem_invoices(5)
    client.force_login(finance_user)
    client.get(URL)  # warm caches that are not per-row (content types, settings row)
    with_5 = _count_queries(client)
    problem_invoices(45)
    # No per-row queries: customer, reason and links come with the page query.
    assert _count_queries(client) == with_5


@pytest.mark.parametrize("sync_type", ["invoice", "payment", "customer", "creditmemo", "item"])
def test_it_renders_every_tab(client, finance_user, company, sync_type):
    client.force_login(finance_user)
    assert client.get(URL, {"type": sync_type}).status_code == 200


def test_it_shows_the_detail_drawer_with_attempts(client, finance_user, company):
    from sync.models import SyncAttempt

    [invoice] = problem_invoices(1)
    SyncAttempt.objects.create(
        record_type="invoice",
        record_id=invoice.pk,
        operation="create",
        outcome="problem",
        fault_code="6000",
        message="Item reference missing",
    )
    client.force_login(finance_user)
    response = client.get(
        reverse("sync:detail", args=["invoice", invoice.pk]), HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert 'data-testid="detail-drawer"' in html
    assert "Item reference missing" in html
    # The payload preview either renders or says why not, never a 500.
    assert 'data-testid="payload-preview"' in html


def test_it_answers_404_for_an_unknown_record_type(client, finance_user, company):
    client.force_login(finance_user)
    assert client.get(reverse("sync:detail", args=["truck", 1])).status_code == 404


def test_it_redirects_home_to_problem_sync(client, finance_user):
    client.force_login(finance_user)
    assert client.get("/")["Location"] == URL


def test_it_shows_the_reconnect_banner_with_the_countdown(client, finance_user, company):
    from datetime import timedelta

    from django.utils import timezone

    from sync.selectors import connection_for_company

    connection = connection_for_company(company=company)
    connection.realm_id, connection.status = "9130", "needs_reconnect"
    connection.refresh_token_expires_at = timezone.now() + timedelta(days=3, hours=2)
    connection.save()
    client.force_login(finance_user)
    html = client.get(URL).content.decode()
    assert 'data-testid="reconnect-banner"' in html
    assert "3\xa0days" in html  # "expires in 3 days, 1 hour"


def test_it_searches_by_po_reference_and_load_number(client, finance_user, company):
    first, second = problem_invoices(2)
    load = ChargeSet.objects.filter(invoice=first).first().load
    type(load).objects.filter(pk=load.pk).update(po_number="PO-778899", reference_number="REF-4411")
    client.force_login(finance_user)
    for text in ("PO-778899", "REF-4411", load.load_number):
        html = client.get(URL, {"q": text}).content.decode()
        assert f"row-invoice-{first.pk}" in html, text
        assert f"row-invoice-{second.pk}" not in html, text


def test_an_unknown_reason_drops_only_that_filter_and_says_so(client, finance_user, company):
    first, second = problem_invoices(2)
    container = ChargeSet.objects.filter(invoice=first).first().load.container_number
    client.force_login(finance_user)

    html = client.get(URL, {"q": container, "reason": "no_such_reason"}).content.decode()

    assert f"row-invoice-{first.pk}" in html
    assert f"row-invoice-{second.pk}" not in html  # the search still applies
    assert "reason filter in the link is not valid" in html


def test_csv_exports_every_page_of_the_current_view(client, finance_user, company):
    matching = [park(problem_invoices(1)[0], reason="validation") for _ in range(55)]
    other = park(problem_invoices(1)[0], reason="duplicate_doc_number")
    Customer = type(other.customer)
    Customer.objects.filter(pk=matching[0].customer_id).update(display_name="=HYPERLINK(evil)")
    client.force_login(finance_user)

    response = client.get(URL, {"type": "invoice", "reason": "validation", "format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    import csv
    import io

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["Record", "Customer", "Amount", "Reason"]
    ids = {int(r[-1]) for r in rows[1:]}
    assert ids == {i.pk for i in matching}  # past the first page of 50, the filter kept
    assert "'=HYPERLINK(evil)" in {r[1] for r in rows[1:]}  # a formula stays text
