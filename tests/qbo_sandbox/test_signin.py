"""The emulator's QuickBooks-user sign-in: the consent page and the UI ask for it, like Intuit;
the token, revoke, discovery and v3 endpoints (called by servers, not people) do not."""

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.enums import Scopes

from qbo_sandbox import services
from qbo_sandbox.models import AuthCode, Entity
from qbo_sandbox.signin import SESSION_KEY
from qbo_sandbox.store import Ctx, entity_create

from .conftest import REDIRECT_URI
from .helpers import SANDBOX_EMAIL, SANDBOX_PASSWORD, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SIGNIN = "/qbo-sandbox/signin"
AUTHORIZE = "/qbo-sandbox/oauth2/authorize"


def authorize_params(app, state="st"):
    return {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": Scopes.ACCOUNTING.value,
        "state": state,
    }


def next_of(response):
    """Where the sign-in page the response redirects to will send the user back."""
    location = urlparse(response.headers["Location"])
    assert location.path == SIGNIN, response.headers["Location"]
    return parse_qs(location.query)["next"][0]


@pytest.fixture
def other_company(transactional_db):
    return services.company_create(name="Other Books")


@pytest.fixture
def invoice(company):
    ctx = Ctx(company)
    customer = entity_create(ctx, "Customer", {"DisplayName": "Signin Customer"})
    return entity_create(
        ctx, "Invoice", {"CustomerRef": {"value": str(customer.qbo_id)}, "Line": [{"Amount": 80}]}
    )


def ui(company, *parts):
    return "/qbo-sandbox/company/" + "/".join([company.realm_id, *map(str, parts)])


# --- the consent page ------------------------------------------------------------------


def test_it_sends_a_signed_out_visitor_of_the_consent_page_to_signin_and_back(
    base_url, auth_client_factory, company, sandbox_user
):
    # Intuit signs its user in before the consent page, then shows that page again.
    url = auth_client_factory().get_authorization_url([Scopes.ACCOUNTING], state_token="st-9")
    session = requests.Session()
    next_url = next_of(session.get(url, allow_redirects=False))
    assert next_url == url.removeprefix(base_url.removesuffix("/qbo-sandbox"))
    answer = sign_in(session, base_url, next_url=next_url)
    assert answer.headers["Location"] == next_url
    page = session.get(base_url.removesuffix("/qbo-sandbox") + next_url)
    assert f'data-realm="{company.realm_id}">Connect</button>' in page.text


def test_it_does_not_open_the_consent_page_for_a_tms_login_alone(client, superuser, app):
    # A TMS user (even a superuser) signed into the app is not signed into QuickBooks.
    client.force_login(superuser)
    response = client.get(AUTHORIZE, authorize_params(app))
    assert response.status_code == 302
    assert urlparse(next_of(response)).path == AUTHORIZE


def test_it_does_not_open_the_sandbox_ui_for_a_tms_login_alone(client, superuser, company):
    # Same rule for the UI: the emulator's pages belong to its own QuickBooks users.
    client.force_login(superuser)
    assert next_of(client.get(ui(company) + "/")) == ui(company) + "/"


def test_it_checks_the_client_before_asking_to_sign_in(client):
    # Like Intuit: an unknown client_id is an error page, whoever is (not) signed in.
    response = client.get(AUTHORIZE, {"client_id": "nope", "redirect_uri": REDIRECT_URI})
    assert response.status_code == 400
    assert b'id="oauth-error"' in response.content


def test_it_lists_only_the_users_companies_on_the_consent_page(
    signed_in, app, company, other_company
):
    # A QuickBooks user picks among the companies it belongs to, never anyone else's.
    page = signed_in.get(AUTHORIZE, authorize_params(app)).content.decode()
    assert f'data-realm="{company.realm_id}"' in page
    assert other_company.realm_id not in page


def test_it_refuses_a_consent_post_for_another_company(signed_in, app, other_company):
    # A forged POST must not hand the app a code for a company the user cannot access.
    form = {**authorize_params(app), "realm_id": other_company.realm_id, "action": "connect"}
    response = signed_in.post(AUTHORIZE, form)
    assert response.status_code == 403
    assert not AuthCode.objects.exists()


def test_it_refuses_a_signed_out_consent_post_and_comes_back_to_the_consent_page(
    client, app, company
):
    # A session signed out in another tab: no code, and after signing in the same consent page.
    form = {**authorize_params(app), "realm_id": company.realm_id, "action": "connect"}
    response = client.post(AUTHORIZE, form)
    assert not AuthCode.objects.exists()
    next_url = urlparse(next_of(response))
    assert next_url.path == AUTHORIZE
    assert parse_qs(next_url.query) == {k: [v] for k, v in authorize_params(app).items()}


# --- the sign-in form ------------------------------------------------------------------


def test_it_refuses_a_wrong_password_with_a_message(client, sandbox_user):
    # The user must learn why nothing happened, and the session must stay signed out.
    response = client.post(SIGNIN, {"email": SANDBOX_EMAIL, "password": "not-it"})
    assert response.status_code == 200
    assert "Wrong email or password" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_it_refuses_a_signin_post_without_its_csrf_token(base_url, sandbox_user):
    # Login CSRF: another site must not sign a browser in as a user of its choosing.
    response = requests.post(
        base_url + "/signin", data={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/qbo-sandbox/../admin/",
        "/admin/",
    ],
)
def test_it_refuses_to_redirect_outside_the_emulator_after_signin(client, sandbox_user, next_url):
    # An open redirect would let a phishing link pass through our sign-in page.
    response = client.post(
        SIGNIN, {"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD, "next": next_url}
    )
    assert response.headers["Location"] == "/qbo-sandbox/"


def test_it_keeps_the_tms_login_when_signing_in_to_the_emulator(client, superuser, sandbox_user):
    # Two users in one browser session: QuickBooks' sign-in must not end the TMS one.
    client.force_login(superuser)
    client.post(SIGNIN, {"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    assert client.session["_auth_user_id"] == str(superuser.pk)
    assert client.session[SESSION_KEY]["id"] == sandbox_user.pk


def test_it_signs_out_of_the_emulator_only(signed_in, superuser):
    # Signing out of QuickBooks leaves the TMS login alone (and the other way round).
    signed_in.force_login(superuser)
    signed_in.post("/qbo-sandbox/signout")
    assert SESSION_KEY not in signed_in.session
    assert signed_in.session["_auth_user_id"] == str(superuser.pk)


def test_it_signs_every_session_out_when_the_password_changes(signed_in, company):
    # A new password (create-user again) must shut out whoever knew the old one.
    services.user_ensure(email=SANDBOX_EMAIL, password="a-new-one")
    assert next_of(signed_in.get(ui(company) + "/")) == ui(company) + "/"


# --- the UI ------------------------------------------------------------------------------


def test_it_lists_only_the_users_companies_in_the_ui(signed_in, company, other_company):
    # The company list is the user's, not the whole emulator's.
    page = signed_in.get("/qbo-sandbox/").content.decode()
    assert company.realm_id in page
    assert other_company.realm_id not in page


def test_it_answers_404_for_another_users_company_page(signed_in, other_company):
    # As if it did not exist: a user learns nothing about companies that are not theirs.
    assert signed_in.get(ui(other_company) + "/").status_code == 404


def test_it_refuses_a_signed_out_customer_edit_and_changes_nothing(client, company, invoice):
    # Anyone reaching the emulator must not rename QuickBooks customers.
    customer = Entity.objects.get(entity_type="Customer")
    response = client.post(ui(company, "customer", customer.qbo_id, "edit"), {"display_name": "X"})
    assert next_of(response) == "/qbo-sandbox/"
    got = services.entity_get(company=company, entity_type="Customer", qbo_id=customer.qbo_id)
    assert (got["DisplayName"], got["SyncToken"]) == ("Signin Customer", "0")


def test_it_refuses_a_signed_out_payment_and_changes_nothing(client, company, invoice):
    # Receiving a payment marks the TMS invoice paid: never without a QuickBooks user.
    url = ui(company, "invoice", invoice.qbo_id, "receive-payment")
    referer = "http://testserver" + ui(company, "invoice")
    response = client.post(url, {"amount": "80.00"}, HTTP_REFERER=referer)
    assert next_of(response) == ui(company, "invoice")
    assert services.entity_list(company=company, entity_type="Payment") == []
    got = services.entity_get(company=company, entity_type="Invoice", qbo_id=invoice.qbo_id)
    assert got["Balance"] == 80.0


def test_it_refuses_a_signed_out_void_and_changes_nothing(client, company, invoice):
    # Voiding zeroes the invoice in QuickBooks: a signed-out POST must leave it whole.
    response = client.post(ui(company, "invoice", invoice.qbo_id, "void"))
    assert response.status_code == 302
    got = services.entity_get(company=company, entity_type="Invoice", qbo_id=invoice.qbo_id)
    assert (got["TotalAmt"], got["SyncToken"], got.get("PrivateNote")) == (80.0, "0", None)


def test_it_refuses_a_signed_out_delete_and_changes_nothing(client, company, invoice):
    # Deleting cannot be undone: a signed-out POST must not reach the store.
    response = client.post(ui(company, "invoice", invoice.qbo_id, "delete"))
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.deleted is False


def test_it_refuses_a_write_to_another_users_company(signed_in, other_company):
    # Signed in is not enough: the company must be the user's.
    customer = entity_create(Ctx(other_company), "Customer", {"DisplayName": "Theirs"})
    url = ui(other_company, "customer", customer.qbo_id, "edit")
    assert signed_in.post(url, {"display_name": "Mine now"}).status_code == 404
    got = services.entity_get(company=other_company, entity_type="Customer", qbo_id=customer.qbo_id)
    assert got["DisplayName"] == "Theirs"


# --- what stays open ---------------------------------------------------------------------


def test_it_serves_the_token_endpoint_without_any_session(base_url, app, tokens):
    # The TMS's server calls it with client credentials, never with a browser session.
    response = requests.post(
        base_url + "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(app.client_id, app.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["access_token"] != tokens["access_token"]


@pytest.mark.parametrize("path", ["/.well-known/openid_configuration", "/op/v1/jwks"])
def test_it_serves_discovery_and_jwks_without_any_session(base_url, path):
    # intuit-oauth reads them from the server before anyone signs in.
    assert requests.get(base_url + path).status_code == 200


def test_it_serves_the_v3_api_without_any_session(api):
    # The bearer token is the API's authentication, not a sandbox sign-in.
    assert api.get("companyinfo/1").status_code == 200
