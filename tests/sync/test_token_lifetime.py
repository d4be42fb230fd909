"""The grant's hard expiry (Intuit, Nov 2025: at most 5 years from consent): asked for on every
token request, stored, kept across refreshes, shown and warned about before it comes; Intuit's
Reconnect URL (`sync:reconnect`) renews it for the tenant of the realm QuickBooks names."""

import io
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone

from finance.models import Membership
from finance.services import tenant_ensure
from finance.syncstate import SyncStatus
from finance.tenancy import SESSION_KEY
from sync.models import QuickBooksConnection
from sync.selectors import connection_for_company
from sync.services import client as client_services
from sync.services import connection as connection_services
from sync.services import engine
from sync.services.client import NeedsReconnect, refresh_tokens
from sync.services.connection import connect_with_tokens
from tests.finance.factories import CustomerFactory
from tests.sync.test_connection import consent

FIVE_YEARS = timedelta(days=1826)  # the emulator's default, Intuit's maximum
DAY = timedelta(days=1)


def fresh(connection):
    return QuickBooksConnection.objects.get(pk=connection.pk)


def close(moment, expected, slack=timedelta(minutes=2)):
    return moment is not None and abs(moment - expected) < slack


def tell_emulator_hard_expiry(realm: str, days: float) -> bool:
    """The emulator's `qbo_sandbox token-expiry` (its current grants for this realm end `days`
    from now); False when the emulator in this tree does not have the command yet."""
    try:
        call_command(
            "qbo_sandbox", "token-expiry", "--realm", realm, "--hard-expires-in-days", str(days),
            stdout=io.StringIO(),
        )  # fmt: skip
    except CommandError as exc:
        if "invalid choice" in str(exc) and "token-expiry" in str(exc):
            return False
        raise
    return True


def second_tenant(qbo, finance_user, *, name="Bayou Drayage LLC", books="Bayou Books"):
    """Another tenant, connected to an emulator company of its own; the user a member of both
    (the default tenant first: it is the one they start in)."""
    from qbo_sandbox import services as emulator

    ours = qbo.connection.company
    theirs, _ = tenant_ensure(name=name)
    Membership.objects.get_or_create(user=finance_user, company=ours)
    Membership.objects.get_or_create(user=finance_user, company=theirs)
    tokens = emulator.tokens_issue(app=qbo.app, company=emulator.company_create(name=books))
    connection = connect_with_tokens(
        connection=connection_for_company(company=theirs),
        realm_id=tokens["realm_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        company_name=books,
    )
    return theirs, connection


# --- storing it (live emulator) ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connect_through_consent_stores_the_hard_expiry(qbo, finance_user):
    QuickBooksConnection.objects.filter(pk=qbo.connection.pk).update(
        refresh_token_hard_expires_at=timezone.now() + 3 * DAY
    )
    connection = connection_services.disconnect(connection=qbo.connection, user=finance_user)
    assert fresh(connection).refresh_token_hard_expires_at is None  # the revoked grant's end
    answer = consent(connection_services.authorize_url(connection=connection), qbo.realm)

    connected = connection_services.complete_callback(
        connection=fresh(connection),
        user=finance_user,
        code=answer["code"],
        state=answer["state"],
        realm_id=answer["realmId"],
    )

    stored = fresh(connected)
    assert close(stored.refresh_token_hard_expires_at, timezone.now() + FIVE_YEARS)
    assert stored.refresh_token_expires_at <= stored.refresh_token_hard_expires_at


@pytest.mark.django_db(transaction=True)
def test_a_refresh_stores_what_the_emulator_says_and_the_next_keeps_it(qbo):
    told = tell_emulator_hard_expiry(qbo.realm, 400)
    connection = fresh(qbo.connection)
    assert connection.refresh_token_hard_expires_at is None  # connected by tokens, unknown

    refreshed = refresh_tokens(
        connection_id=connection.pk, seen_generation=connection.token_generation
    )

    expected = timezone.now() + (timedelta(days=400) if told else FIVE_YEARS)
    hard = refreshed.refresh_token_hard_expires_at
    assert close(hard, expected)
    again = refresh_tokens(connection_id=refreshed.pk, seen_generation=refreshed.token_generation)
    assert again.token_generation == refreshed.token_generation + 1
    assert close(again.refresh_token_hard_expires_at, hard, slack=timedelta(seconds=5))
    assert again.refresh_token_expires_at <= again.refresh_token_hard_expires_at


@pytest.mark.django_db(transaction=True)
def test_an_answer_without_the_field_keeps_the_stored_value_and_caps_the_rolling_one(
    qbo, monkeypatch
):
    # The emulator, like Intuit, sends the field only when asked: ask under another name.
    monkeypatch.setattr(client_services, "HARD_EXPIRY_HEADER", "x-not-asking")
    stored = timezone.now() + 10 * DAY
    QuickBooksConnection.objects.filter(pk=qbo.connection.pk).update(
        refresh_token_hard_expires_at=stored
    )
    connection = fresh(qbo.connection)

    refreshed = refresh_tokens(
        connection_id=connection.pk, seen_generation=connection.token_generation
    )

    assert refreshed.token_generation == connection.token_generation + 1
    assert refreshed.refresh_token_hard_expires_at == stored  # not nulled
    assert refreshed.refresh_token_expires_at == stored  # the ~100 days cut to the hard end


@pytest.mark.django_db(transaction=True)
def test_another_tenants_hard_expiry_left_on_the_thread_client_is_never_stored(
    qbo, finance_user, monkeypatch
):
    """auth_client() hands the same AuthClient to every tenant of a thread, and intuit-oauth
    sets the answer's keys on it: an answer lacking the field must not inherit the last one."""
    _, theirs = second_tenant(qbo, finance_user)
    ours = fresh(qbo.connection)
    refresh_tokens(connection_id=ours.pk, seen_generation=ours.token_generation)
    assert client_services.auth_client().x_refresh_token_hard_expires_in  # left on the client
    monkeypatch.setattr(client_services, "HARD_EXPIRY_HEADER", "x-not-asking")

    refreshed = refresh_tokens(connection_id=theirs.pk, seen_generation=theirs.token_generation)

    assert refreshed.token_generation == theirs.token_generation + 1
    assert refreshed.refresh_token_hard_expires_at is None


@pytest.mark.django_db(transaction=True)
def test_only_token_requests_carry_the_header(qbo, monkeypatch):
    seen: list[tuple[str, str, str | None]] = []
    send = requests.Session.send

    def recording_send(session, request, **kwargs):
        asked = request.headers.get(client_services.HARD_EXPIRY_HEADER)
        seen.append((request.method, request.url, asked))
        return send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    # A client of its own, so its discovery request is seen too.
    monkeypatch.setattr(client_services._threads, "auth_clients", {}, raising=False)
    auth = client_services.auth_client()
    connection = fresh(qbo.connection)
    refresh_tokens(connection_id=connection.pk, seen_generation=connection.token_generation)
    customer = CustomerFactory()
    assert engine.push_record(sync_type="customer", pk=customer.pk) == "synced"

    token_calls = [asked for _, url, asked in seen if url == auth.token_endpoint]
    others = [(method, url, asked) for method, url, asked in seen if url != auth.token_endpoint]
    assert token_calls == ["true"]
    assert any("openid_configuration" in url for _, url, _ in others)  # discovery was seen
    assert any("/v3/company/" in url for _, url, _ in others)  # and the API
    assert all(asked is None for _, _, asked in others), others


# --- showing it and warning -------------------------------------------------------------


def connect(company, *, hard_days=None, rolling_days=101, realm="9341"):
    return connect_with_tokens(
        connection=connection_for_company(company=company),
        realm_id=realm,
        access_token=f"a-{realm}",
        refresh_token=f"r-{realm}",
        refresh_expires_in=int(rolling_days * 86400),
        refresh_hard_expires_in=None if hard_days is None else int(hard_days * 86400),
        company_name=f"Books {realm}",
    )


def card(client):
    return client.get(reverse("sync:connection_card"), HTTP_HX_REQUEST="true").content.decode()


def page(client):
    return client.get(reverse("sync:problems")).content.decode()


@pytest.mark.django_db
def test_the_card_shows_when_the_authorization_ends_for_good(client, finance_user, company):
    connection = connect(company, hard_days=1000)
    client.force_login(finance_user)

    html = card(client)

    assert "Authorization ends for good" in html
    assert date_filter(connection.refresh_token_hard_expires_at, "DATE_FORMAT") in html
    assert "in 2\xa0years" in html  # time remaining (timeuntil)
    assert 'data-testid="card-expiry-warning"' not in html
    assert 'data-testid="expiry-warning"' not in page(client)


@pytest.mark.django_db
def test_29_days_before_the_hard_expiry_the_card_and_the_banner_warn(client, finance_user, company):
    connect(company, hard_days=29)
    client.force_login(finance_user)

    html, banner = card(client), page(client)

    assert 'data-testid="card-expiry-warning"' in html and "ends in 29 days" in html
    assert 'data-testid="expiry-warning"' in banner
    assert "QuickBooks authorization ends in 29 days — Reconnect to renew" in banner
    assert f'href="{reverse("sync:reconnect")}" data-testid="expiry-reconnect"' in banner
    assert 'data-testid="reconnect-banner"' not in banner  # connected: not that banner


@pytest.mark.django_db
def test_31_days_before_nothing_warns(client, finance_user, company):
    connect(company, hard_days=31)
    client.force_login(finance_user)

    assert 'data-testid="card-expiry-warning"' not in card(client)
    assert 'data-testid="expiry-warning"' not in page(client)


@pytest.mark.django_db
def test_the_window_is_the_setting(client, finance_user, company, settings):
    settings.QBO_TOKEN_EXPIRY_WARNING_DAYS = 45
    connect(company, hard_days=31)
    client.force_login(finance_user)

    assert "QuickBooks authorization ends in 31 days" in page(client)


@pytest.mark.django_db
def test_a_rolling_expiry_within_the_window_warns_too(client, finance_user, company):
    connect(company, rolling_days=12)  # no refresh for ~3 months; no hard expiry known
    client.force_login(finance_user)

    banner = page(client)

    assert "QuickBooks authorization ends in 12 days — Reconnect to renew" in banner
    assert "unused since its last renewal" in banner
    assert "ends in 12 days" in card(client)


@pytest.mark.django_db
def test_without_manage_connection_the_banner_warns_without_the_link(client, company, support_user):
    connect(company, hard_days=5)
    client.force_login(support_user)

    banner = page(client)

    assert "QuickBooks authorization ends in 5 days" in banner
    assert 'data-testid="expiry-reconnect"' not in banner


@pytest.mark.django_db
def test_another_tenants_expiry_never_shows(client, finance_user, company):
    other, _ = tenant_ensure(name="Bayou Drayage LLC")
    Membership.objects.create(user=finance_user, company=company)
    connect(company, hard_days=1000, realm="9341")
    connect(other, hard_days=3, realm="9342")
    client.force_login(finance_user)

    assert 'data-testid="expiry-warning"' not in page(client)
    assert 'data-testid="card-expiry-warning"' not in card(client)
    # Theirs warns in theirs (for a member there): the check above has teeth.
    Membership.objects.create(user=finance_user, company=other)
    client.post(reverse("finance:tenant_switch"), {"company": other.pk})
    assert "QuickBooks authorization ends in 3 days" in page(client)


# --- the Reconnect URL ------------------------------------------------------------------


def state_of(location: str) -> str:
    return parse_qs(urlparse(location).query)["state"][0]


@pytest.mark.django_db(transaction=True)
def test_reconnect_with_a_realm_starts_the_consent_flow_of_that_tenant(client, qbo, finance_user):
    theirs_company, theirs = second_tenant(qbo, finance_user)
    ours_state = fresh(qbo.connection).oauth_state
    client.force_login(finance_user)
    assert client.session.get(SESSION_KEY) in (None, qbo.connection.company_id)

    response = client.get(reverse("sync:reconnect"), {"realmId": theirs.realm_id})

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(qbo.base_url + "/")
    assert state_of(location) == fresh(theirs).oauth_state
    assert fresh(qbo.connection).oauth_state == ours_state  # ours untouched
    assert client.session[SESSION_KEY] == theirs_company.pk  # switched, as the menu does
    # The callback then completes as today, in that tenant.
    answer = consent(location, theirs.realm_id)
    generation = fresh(theirs).token_generation
    done = client.get(reverse("sync:callback"), answer)
    assert done.status_code == 302
    renewed = fresh(theirs)
    assert renewed.token_generation == generation + 1
    assert renewed.status == QuickBooksConnection.Status.CONNECTED
    assert close(renewed.refresh_token_hard_expires_at, timezone.now() + FIVE_YEARS)


@pytest.mark.django_db(transaction=True)
def test_reconnect_without_a_realm_is_for_the_current_tenant(client, qbo, finance_user):
    _, theirs = second_tenant(qbo, finance_user)
    client.force_login(finance_user)

    response = client.get(reverse("sync:reconnect"))

    assert response.status_code == 302
    assert state_of(response["Location"]) == fresh(qbo.connection).oauth_state
    assert fresh(theirs).oauth_state == ""


@pytest.mark.django_db
def test_reconnect_for_a_realm_of_no_tenant_of_the_user_is_a_plain_404(
    client, finance_user, company
):
    other, _ = tenant_ensure(name="Bayou Drayage LLC")
    Membership.objects.create(user=finance_user, company=company)
    connect(company, realm="9341")
    connect(other, realm="9342")
    client.force_login(finance_user)

    for realm in ("9342", "777"):  # another tenant's, and nobody's
        response = client.get(reverse("sync:reconnect"), {"realmId": realm})
        assert response.status_code == 404
        assert f"QuickBooks company {realm} is not connected to any company you work in" in (
            response.content.decode()
        )
    assert connection_for_company(company=other).oauth_state == ""
    assert connection_for_company(company=company).oauth_state == ""
    assert client.session.get(SESSION_KEY) in (None, company.pk)


@pytest.mark.django_db
def test_reconnect_needs_a_sign_in_and_the_permission(client, support_user, company):
    connect(company, realm="9341")

    anonymous = client.get(reverse("sync:reconnect"), {"realmId": "9341"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    client.force_login(support_user)  # staff, every tenant, but no manage_connection
    assert client.get(reverse("sync:reconnect"), {"realmId": "9341"}).status_code == 403
    assert connection_for_company(company=company).oauth_state == ""


# --- after the hard expiry --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_refresh_refused_after_the_hard_expiry_needs_reconnecting(client, qbo, finance_user):
    if tell_emulator_hard_expiry(qbo.realm, 3 / 86400):
        # The grant ends in 3 s; a refresh learns it, and the next is refused.
        connection = fresh(qbo.connection)
        connection = refresh_tokens(
            connection_id=connection.pk, seen_generation=connection.token_generation
        )
        assert connection.refresh_token_hard_expires_at < timezone.now() + timedelta(seconds=5)
        time.sleep(
            max(0.0, (connection.refresh_token_hard_expires_at - timezone.now()).total_seconds())
            + 1.5
        )
    else:
        connection = fresh(qbo.connection)
        # An emulator without the command: Intuit's refusal (invalid_grant) by revoking, our
        # own record of the end date put in the past.
        qbo.faults(revoke_refresh_tokens=True)
        QuickBooksConnection.objects.filter(pk=connection.pk).update(
            refresh_token_hard_expires_at=timezone.now() - timedelta(seconds=1)
        )
    qbo.faults(expire_tokens=True)  # the access token too: the next call must refresh
    customer = CustomerFactory()

    assert engine.push_record(sync_type="customer", pk=customer.pk) == "waiting"

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING
    assert customer.attempts == 0 and customer.problem_reason == ""
    stopped = fresh(connection)
    assert stopped.status == QuickBooksConnection.Status.NEEDS_RECONNECT
    assert "reached its end date" in stopped.last_error
    with pytest.raises(NeedsReconnect):
        refresh_tokens(connection_id=stopped.pk, seen_generation=stopped.token_generation)
    client.force_login(finance_user)
    banner = page(client)
    assert 'data-testid="reconnect-banner"' in banner
    assert 'data-testid="expiry-warning"' not in banner
