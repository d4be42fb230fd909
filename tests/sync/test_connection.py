"""Connect, disconnect and reconnect through intuit-oauth against the emulator's OAuth."""

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from finance.models import Customer, ManualAction
from finance.syncstate import SyncStatus
from sync.models import QuickBooksConnection
from sync.services import connection as connection_services
from sync.services import engine
from tests.finance.factories import CustomerFactory
from tests.qbo_sandbox.helpers import SANDBOX_EMAIL, SANDBOX_PASSWORD, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def consent(authorize_url: str, realm: str, action: str = "connect") -> dict:
    """Sign in to the emulator as the company's QuickBooks user, then press the consent page's
    button (what the user does in the browser)."""
    from qbo_sandbox import services

    query = {k: v[0] for k, v in parse_qs(urlparse(authorize_url).query).items()}
    services.user_ensure(email=SANDBOX_EMAIL, password=SANDBOX_PASSWORD, realm_ids=[realm])
    browser = requests.Session()
    assert sign_in(browser, authorize_url.split("/oauth2/")[0]).status_code == 302
    assert browser.get(authorize_url, timeout=5).status_code == 200  # the consent page
    token = browser.cookies["csrftoken"]
    response = browser.post(
        authorize_url.split("?")[0],
        data={**query, "realm_id": realm, "action": action, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}


def fresh(connection):
    return QuickBooksConnection.objects.get(pk=connection.pk)


def test_it_connects_through_the_authorization_code_flow(qbo, finance_user):
    connection = connection_services.disconnect(connection=qbo.connection, user=finance_user)
    url = connection_services.authorize_url(connection=connection)
    answer = consent(url, qbo.realm)

    connection = connection_services.complete_callback(
        connection=fresh(connection),
        user=finance_user,
        code=answer["code"],
        state=answer["state"],
        realm_id=answer["realmId"],
    )

    assert connection.status == QuickBooksConnection.Status.CONNECTED
    assert connection.connected_by == finance_user
    assert connection.access_token and connection.refresh_token
    customer = CustomerFactory()
    assert engine.push_record(sync_type="customer", pk=customer.pk) == "synced"


def test_a_wrong_state_is_refused_and_changes_nothing(qbo, finance_user):
    url = connection_services.authorize_url(connection=qbo.connection)
    answer = consent(url, qbo.realm)
    before = fresh(qbo.connection).token_generation

    with pytest.raises(connection_services.ConnectError, match="does not match"):
        connection_services.complete_callback(
            connection=fresh(qbo.connection),
            user=finance_user,
            code=answer["code"],
            state="forged-state",
            realm_id=answer["realmId"],
        )

    assert fresh(qbo.connection).token_generation == before


def test_a_denied_consent_says_so(qbo, finance_user):
    url = connection_services.authorize_url(connection=qbo.connection)
    answer = consent(url, qbo.realm, action="deny")

    with pytest.raises(connection_services.ConnectError, match="Cancel"):
        connection_services.complete_callback(
            connection=fresh(qbo.connection), user=finance_user, **{"error": answer["error"]}
        )
    assert ManualAction.objects.filter(note__startswith="Connect refused").exists()


def test_another_company_is_refused_unless_mappings_are_reset(qbo, finance_user):
    from qbo_sandbox import services

    customer = CustomerFactory()
    engine.push_record(sync_type="customer", pk=customer.pk)
    other = services.company_create(name="Other Books")

    url = connection_services.authorize_url(connection=qbo.connection)
    answer = consent(url, other.realm_id)
    with pytest.raises(connection_services.ConnectError, match="different QuickBooks company"):
        connection_services.complete_callback(
            connection=fresh(qbo.connection), user=finance_user,
            code=answer["code"], state=answer["state"], realm_id=answer["realmId"],
        )  # fmt: skip
    assert fresh(qbo.connection).realm_id == qbo.realm
    assert Customer.objects.get(pk=customer.pk).qb_id != ""

    url = connection_services.authorize_url(connection=fresh(qbo.connection), reset_mappings=True)
    answer = consent(url, other.realm_id)
    connection_services.complete_callback(
        connection=fresh(qbo.connection), user=finance_user,
        code=answer["code"], state=answer["state"], realm_id=answer["realmId"],
    )  # fmt: skip

    customer.refresh_from_db()
    assert fresh(qbo.connection).realm_id == other.realm_id
    assert (customer.qb_id, customer.sync_status) == ("", SyncStatus.PENDING)


def test_connect_a_different_company_that_picks_the_same_one_resets_nothing(
    qbo, finance_user, client
):
    from django.urls import reverse

    customer = CustomerFactory()
    engine.push_record(sync_type="customer", pk=customer.pk)
    client.force_login(finance_user)
    card = client.get(reverse("sync:connection_card"), HTTP_HX_REQUEST="true").content.decode()
    assert "again resets nothing" in card  # the warning said every ID is reset, whatever is picked

    started = client.post(reverse("sync:connect"), {"reset_mappings": "1"})
    answer = consent(started["Location"], qbo.realm)
    done = client.get(reverse("sync:callback"), answer, follow=True)

    shown = [str(m) for m in done.context["messages"]]
    assert "That is the company already linked: no QuickBooks ID was reset." in shown
    customer.refresh_from_db()
    assert customer.qb_id and customer.sync_status == SyncStatus.SYNCED


def test_disconnect_revokes_and_keeps_the_mappings(qbo, finance_user):
    customer = CustomerFactory()
    engine.push_record(sync_type="customer", pk=customer.pk)
    old_refresh = fresh(qbo.connection).refresh_token

    connection = connection_services.disconnect(connection=fresh(qbo.connection), user=finance_user)

    assert connection.status == QuickBooksConnection.Status.DISCONNECTED
    assert connection.refresh_token == ""
    assert Customer.objects.get(pk=customer.pk).qb_id != ""
    # The revoked refresh token is dead at Intuit's side too.
    from sync.services.client import auth_client

    with pytest.raises(Exception, match="400"):
        auth_client().refresh(refresh_token=old_refresh)


def test_it_gives_the_demo_quickbooks_user_the_company_connect_sandbox_connects(qbo, capsys):
    # The demo's reconnect goes through the emulator's sign-in: its user must see that company.
    from django.core.management import call_command

    from qbo_sandbox import services
    from qbo_sandbox.models import SandboxUser

    call_command("connect_sandbox", "--realm", qbo.realm)
    user = services.user_authenticate(email="books@portpro.example", password="sandbox")
    assert [c.realm_id for c in services.user_companies(user=user)] == [qbo.realm]
    assert SandboxUser.objects.count() == 1
    assert "books@portpro.example / sandbox" in capsys.readouterr().out


def test_a_second_tenant_gets_its_own_emulator_company_user_and_items(qbo, capsys):
    # make demo's second trucking company: its reconnect must offer its own company only.
    from django.core.management import call_command

    from finance.models import ChargeCode
    from finance.services import tenant_ensure
    from qbo_sandbox import services
    from qbo_sandbox.models import SandboxCompany
    from sync.selectors import connection_for_company
    from tests.finance.factories import ChargeCodeFactory

    other, _ = tenant_ensure(name="Bayou Drayage LLC")
    code = ChargeCodeFactory(company=other)
    args = ["--company", other.name, "--name", "Bayou Books", "--sandbox-user", "bayou@x.example"]

    call_command("connect_sandbox", *args, "--map-charge-codes")
    call_command("connect_sandbox", *args, "--if-needed")

    theirs = connection_for_company(company=other)
    assert theirs.is_usable and theirs.realm_id != qbo.realm
    assert SandboxCompany.objects.filter(name="Bayou Books").count() == 1  # not connected twice
    user = services.user_authenticate(email="bayou@x.example", password="sandbox")
    assert [c.realm_id for c in services.user_companies(user=user)] == [theirs.realm_id]
    assert ChargeCode.objects.get(pk=code.pk).qb_id != ""
    assert "connected to QuickBooks already" in capsys.readouterr().out
