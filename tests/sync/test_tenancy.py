"""Many tenants in one deployment: a user works in the tenants they belong to, with the role they
have there; another tenant's records, banner and QuickBooks company are out of reach."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from finance.models import Company, Invoice, Membership
from finance.services import ChargeSetSpec, LineSpec, membership_ensure, tenant_ensure
from sync.models import QuickBooksConnection
from sync.selectors import connection_for_company
from sync.services.connection import ConnectError, connect_with_tokens
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory
from tests.sync.uifactories import park

pytestmark = pytest.mark.django_db


def invoice_of(company):
    return InvoiceFactory(
        company=company,
        customer=CustomerFactory(company=company),
        charge_sets=[
            ChargeSetSpec(
                load=LoadFactory(company=company),
                lines=[LineSpec(charge_code=ChargeCodeFactory(company=company), rate=Decimal(50))],
            )
        ],
    )


@pytest.fixture
def tenants(company, finance_user):
    """Ours (the user's, as finance) and another carrier's, each with a problem invoice."""
    other, _ = tenant_ensure(name="Bayou Drayage LLC")
    Membership.objects.create(user=finance_user, company=company)
    ours = park(invoice_of(company), reason="validation")
    theirs = park(invoice_of(other), reason="validation")
    return ours, theirs, other


def test_a_user_sees_only_the_tenants_they_belong_to(client, finance_user, tenants):
    ours, theirs, _ = tenants
    client.force_login(finance_user)

    listed = client.get(reverse("sync:problems") + "?type=invoice").content.decode()

    assert f"row-invoice-{ours.pk}" in listed and f"row-invoice-{theirs.pk}" not in listed
    assert client.get(reverse("sync:detail", args=["invoice", theirs.pk])).status_code == 404
    action = reverse("sync:record_action", args=["invoice", theirs.pk, "clear"])
    assert client.post(action).status_code == 404
    assert Invoice.objects.get(pk=theirs.pk).sync_status == "problem"
    switch = client.post(reverse("finance:tenant_switch"), {"company": tenants[2].pk})
    assert switch.status_code == 403  # not a member there


def test_a_member_of_two_tenants_switches_with_the_menu(client, finance_user, tenants):
    ours, theirs, other = tenants
    Membership.objects.create(user=finance_user, company=other)
    client.force_login(finance_user)
    page = client.get(reverse("sync:problems") + "?type=invoice").content.decode()
    assert 'data-testid="tenant-menu"' in page and "Bayou Drayage LLC" in page

    client.post(reverse("finance:tenant_switch"), {"company": other.pk})

    listed = client.get(reverse("sync:problems") + "?type=invoice").content.decode()
    assert f"row-invoice-{theirs.pk}" in listed and f"row-invoice-{ours.pk}" not in listed


def test_a_support_member_looks_but_does_not_change_that_tenants_sync(client, tenants):
    ours, _, _ = tenants
    user, _ = membership_ensure(
        company=ours.company, username="sue", password="pw-sue", role="support"
    )
    client.force_login(user)

    assert client.get(reverse("sync:detail", args=["invoice", ours.pk])).status_code == 200
    action = reverse("sync:record_action", args=["invoice", ours.pk, "clear"])
    assert client.post(action).status_code == 403


def test_with_several_tenants_a_user_of_none_is_refused(client, outsider, tenants):
    from django.contrib.auth.models import Group

    outsider.groups.add(Group.objects.get(name="Finance"))
    client.force_login(outsider)
    assert client.get(reverse("sync:problems")).status_code == 403


def test_one_quickbooks_company_serves_one_tenant(tenants, company):
    _, _, other = tenants
    mine = connection_for_company(company=company)
    connect_with_tokens(connection=mine, realm_id="9341", access_token="a", refresh_token="r")
    with pytest.raises(ConnectError, match="connected to PortPro Demo Trucking already"):
        connect_with_tokens(
            connection=connection_for_company(company=other),
            realm_id="9341",
            access_token="b",
            refresh_token="s",
        )
    assert QuickBooksConnection.objects.filter(realm_id="9341").count() == 1


def test_the_reconnect_banner_is_the_tenants_own(client, finance_user, tenants):
    _, _, other = tenants
    theirs = connection_for_company(company=other)
    QuickBooksConnection.objects.filter(pk=theirs.pk).update(
        realm_id="777", status=QuickBooksConnection.Status.NEEDS_RECONNECT
    )
    client.force_login(finance_user)
    page = client.get(reverse("sync:problems")).content.decode()
    assert 'data-testid="reconnect-banner"' not in page


def test_tenant_create_is_idempotent_and_makes_its_users(client):
    from django.contrib.auth.models import Group, Permission

    from sync.roles import ensure_roles

    ensure_roles(Group, Permission)  # as migrated (a transactional test may have flushed them)
    for _ in range(2):
        call_command(
            "tenant_create",
            "--name",
            "Gulf Coast Cartage",
            "--finance-user",
            "gcc-finance:pw-one",
            "--support-user",
            "gcc-support:pw-two",
        )
    company = Company.objects.get(name="Gulf Coast Cartage")
    roles = dict(Membership.objects.filter(company=company).values_list("user__username", "role"))
    assert roles == {"gcc-finance": "finance", "gcc-support": "support"}
    from django.contrib.auth.models import User

    user = User.objects.get(username="gcc-finance")
    assert user.check_password("pw-one") and not user.is_staff
    assert User.objects.get(username="gcc-support").is_staff
    client.force_login(user)
    page = client.get(reverse("sync:problems")).content.decode()
    assert 'data-testid="tenant-name">Gulf Coast Cartage' in page


def test_commands_take_company(tenants, company):
    import json
    from io import StringIO

    from django.core.management.base import CommandError

    ours, theirs, other = tenants
    out = StringIO()
    call_command("sync_status", "--json", "--company", other.name, stdout=out)
    assert json.loads(out.getvalue())["invoice"] == {"problem": 1}
    with pytest.raises(CommandError, match="No company named 'Nobody'"):
        call_command("sync_status", "--company", "Nobody")
    with pytest.raises(CommandError, match="No company named"):
        call_command("seed_demo", "--company", "Nobody", stdout=StringIO())


def test_a_fresh_deployment_makes_its_one_company_on_first_use(client, finance_user):
    Company.objects.all().delete()
    client.force_login(finance_user)
    assert client.get(reverse("finance:quickbooks")).status_code == 200
    assert Company.objects.count() == 1


def test_push_on_change_asks_only_about_the_records_own_tenant(
    tenants, company, monkeypatch, django_capture_on_commit_callbacks
):
    from sync.services import enqueue

    _, _, other = tenants
    mine = connection_for_company(company=company)
    connect_with_tokens(connection=mine, realm_id="9342", access_token="a", refresh_token="r")
    sent = []
    monkeypatch.setattr(enqueue, "_send", lambda *args, **kw: sent.append(args) or True)

    with django_capture_on_commit_callbacks(execute=True):
        CustomerFactory(company=other)  # its tenant has no QuickBooks connection
    assert sent == []
    with django_capture_on_commit_callbacks(execute=True):
        customer = CustomerFactory(company=company)
    assert sent == [("push_record", "customer", customer.pk, "change")]


def test_every_record_url_and_row_action_of_another_tenant_is_a_404(client, finance_user, tenants):
    from sync.views.problems import ACTIONS

    _, theirs, _ = tenants
    customer = theirs.customer
    client.force_login(finance_user)
    urls = [
        ("get", reverse("sync:detail", args=["invoice", theirs.pk])),
        ("get", reverse("sync:detail", args=["customer", customer.pk])),
        ("get", reverse("sync:customer_match", args=[customer.pk])),
        ("post", reverse("sync:customer_match", args=[customer.pk])),
        ("get", reverse("sync:doc_number_match", args=["invoice", theirs.pk])),
        ("post", reverse("sync:doc_number_match", args=["invoice", theirs.pk])),
    ]
    urls += [
        ("post", reverse("sync:record_action", args=[kind, record.pk, action]))
        for action in ACTIONS
        for kind, record in (("invoice", theirs), ("customer", customer))
    ]
    answers = {url: getattr(client, method)(url).status_code for method, url in urls}
    assert set(answers.values()) == {404}, {u: s for u, s in answers.items() if s != 404}
    assert Invoice.objects.get(pk=theirs.pk).sync_status == "problem"


def test_the_tenant_is_worked_out_once_per_request_and_again_after_a_switch(
    rf, finance_user, tenants, django_assert_num_queries
):
    from django.contrib.sessions.backends.db import SessionStore

    from finance.tenancy import current_company, switch_company

    _, _, other = tenants
    Membership.objects.create(user=finance_user, company=other)
    request = rf.get("/")
    request.user, request.session = finance_user, SessionStore()
    first = current_company(request)
    with django_assert_num_queries(0):
        assert current_company(request) == first
    switch_company(request, other.pk)
    assert current_company(request) == other
