import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from qbo_sandbox import services

from .conftest import REDIRECT_URI
from .helpers import SANDBOX_EMAIL, SANDBOX_PASSWORD, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def consent(url, realm, action="connect"):
    """Sign in as the company's QuickBooks user, load the consent page and press a button like
    a browser would."""
    services.user_ensure(email=SANDBOX_EMAIL, password=SANDBOX_PASSWORD, realm_ids=[realm])
    session = requests.Session()
    assert sign_in(session, url.split("/oauth2/")[0]).status_code == 302
    page = session.get(url)
    assert page.status_code == 200, page.text
    assert f'data-realm="{realm}">Connect</button>' in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    params = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    form = {**params, "csrfmiddlewaretoken": csrf, "action": action, "realm_id": realm}
    response = session.post(
        url.split("?")[0], data=form, headers={"Referer": url}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_it_serves_the_discovery_document_with_absolute_urls(base_url):
    doc = requests.get(base_url + "/.well-known/openid_configuration").json()
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                "revocation_endpoint", "jwks_uri"):  # fmt: skip
        assert doc[key].startswith(base_url), key


def test_it_runs_the_full_authorization_code_dance(auth_client_factory, company):
    client = auth_client_factory()
    url = client.get_authorization_url([Scopes.ACCOUNTING], state_token="st-1")
    callback = consent(url, company.realm_id)
    # The redirect carries code, state and realmId like Intuit's.
    assert callback["state"] == "st-1"
    assert callback["realmId"] == company.realm_id
    client.get_bearer_token(callback["code"], realm_id=callback["realmId"])
    assert client.access_token and client.refresh_token
    assert client.expires_in == 3600
    assert client.x_refresh_token_expires_in == 8726400
    # A code works once.
    with pytest.raises(AuthClientError) as exc:
        client.get_bearer_token(callback["code"])
    assert exc.value.status_code == 400
    assert exc.value.response.json() == {"error": "invalid_grant"}


def test_it_adds_a_verifiable_id_token_with_openid(auth_client_factory, company):
    client = auth_client_factory()
    url = client.get_authorization_url([Scopes.ACCOUNTING, Scopes.OPENID], state_token="s")
    callback = consent(url, company.realm_id)
    client.get_bearer_token(callback["code"], realm_id=company.realm_id)
    # intuit-oauth sets id_token only when iss, aud, exp and the RS256 signature check out.
    assert client.id_token
    assert client.get_user_info().json()["email"] == "sandbox.user@example.com"


def test_deny_redirects_with_access_denied(auth_client_factory, company):
    url = auth_client_factory().get_authorization_url([Scopes.ACCOUNTING], state_token="s2")
    assert consent(url, company.realm_id, action="deny") == {
        "error": "access_denied",
        "state": "s2",
    }


def test_bad_client_or_redirect_uri_gets_an_error_page_not_a_redirect(base_url, app):
    for params in (
        {"client_id": "nope", "redirect_uri": REDIRECT_URI},
        {"client_id": app.client_id, "redirect_uri": "http://evil.example/cb"},
    ):
        response = requests.get(
            base_url + "/oauth2/authorize",
            params={**params, "response_type": "code", "scope": Scopes.ACCOUNTING.value},
            allow_redirects=False,
        )
        assert response.status_code == 400
        assert 'id="oauth-error"' in response.text


def test_bad_scope_redirects_with_invalid_scope(base_url, app):
    response = requests.get(
        base_url + "/oauth2/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "com.intuit.bogus",
            "state": "x",
        },  # fmt: skip
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == REDIRECT_URI + "?error=invalid_scope&state=x"


def test_refresh_rotates_with_a_grace_window_then_invalid_grant(
    auth_client_factory, tokens, settings
):
    client = auth_client_factory()
    client.refresh(refresh_token=tokens["refresh_token"])
    first = (client.access_token, client.refresh_token)
    assert first[1] != tokens["refresh_token"]
    # A racing worker reusing the old refresh token within the grace window gets the same pair.
    other = auth_client_factory()
    other.refresh(refresh_token=tokens["refresh_token"])
    assert (other.access_token, other.refresh_token) == first
    # After the grace window, the old token is dead.
    settings.QBO_SANDBOX_REFRESH_GRACE_SECONDS = 0
    with pytest.raises(AuthClientError) as exc:
        auth_client_factory().refresh(refresh_token=tokens["refresh_token"])
    assert exc.value.status_code == 400
    assert exc.value.content == b'{"error": "invalid_grant"}'
    # The new one rotates again.
    client.refresh()
    assert client.refresh_token not in (first[1], tokens["refresh_token"])


def test_bad_client_secret_is_invalid_client(base_url, app, tokens):
    from intuitlib.client import AuthClient

    client = AuthClient(
        app.client_id, "wrong", REDIRECT_URI, base_url + "/.well-known/openid_configuration"
    )
    with pytest.raises(AuthClientError) as exc:
        client.refresh(refresh_token=tokens["refresh_token"])
    assert exc.value.status_code == 401
    assert exc.value.response.json() == {"error": "invalid_client"}


def test_revoke_then_revoke_again_is_400_empty(auth_client_factory, tokens, api):
    client = auth_client_factory()
    assert client.revoke(token=tokens["refresh_token"]) is True
    # The connection is gone: the access token no longer works either.
    assert api.get("companyinfo/1").status_code == 401
    with pytest.raises(AuthClientError) as exc:
        client.revoke(token=tokens["refresh_token"])
    assert exc.value.status_code == 400
    assert exc.value.content == b""


def test_tokens_issue_service_returns_a_usable_pair(app, company):
    pair = services.tokens_issue(app=app, company=company)
    assert pair["realm_id"] == company.realm_id
    assert pair["expires_in"] in (3599, 3600)
    assert pair["x_refresh_token_expires_in"] in (8726399, 8726400)


# --- the refresh token's hard expiry (Intuit, Nov 2025: at most 5 years from consent) --------

HARD_HEADER = "x-include-refresh-token-hard-expires-in"
FIVE_YEARS = 1826 * 86400


class HardExpiryAuthClient(AuthClient):
    """intuit-oauth never asks for the hard expiry: add the header to its token requests (an
    AuthClient is a requests.Session, and send_request goes through `request`)."""

    def request(self, method, url, *args, headers=None, **kwargs):
        headers = dict(headers or {})
        if url == getattr(self, "token_endpoint", None):  # None while discovering
            headers[HARD_HEADER] = "true"
        return super().request(method, url, *args, headers=headers, **kwargs)


@pytest.fixture
def hard_client(base_url, app):
    def make():
        return HardExpiryAuthClient(
            app.client_id,
            app.client_secret,
            REDIRECT_URI,
            environment=base_url + "/.well-known/openid_configuration",
        )

    return make


def _connected(client, company):
    url = client.get_authorization_url([Scopes.ACCOUNTING], state_token="hx")
    callback = consent(url, company.realm_id)
    client.get_bearer_token(callback["code"], realm_id=callback["realmId"])
    return client


def test_the_hard_expiry_is_fixed_at_consent_and_kept_across_refreshes(hard_client, company):
    client = _connected(hard_client(), company)
    first = client.x_refresh_token_hard_expires_in  # set_attributes copies every key
    assert FIVE_YEARS - 5 <= first <= FIVE_YEARS
    time.sleep(1.2)
    client.refresh()
    second = client.x_refresh_token_hard_expires_in
    assert 1 <= first - second <= 4  # counts down: a refresh does not restart it
    time.sleep(1.2)
    client.refresh()
    assert 1 <= second - client.x_refresh_token_hard_expires_in <= 4
    assert client.x_refresh_token_expires_in <= client.x_refresh_token_hard_expires_in


def test_without_the_header_the_answer_has_no_hard_expiry(base_url, app, tokens):
    answer = requests.post(
        base_url + "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(app.client_id, app.client_secret),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert "x_refresh_token_hard_expires_in" not in body
    assert set(body) == {
        "x_refresh_token_expires_in", "refresh_token", "access_token", "token_type", "expires_in",
    }  # fmt: skip


def test_the_rolling_expiry_never_outlives_the_hard_one(hard_client, company, settings):
    settings.QBO_SANDBOX_REFRESH_HARD_EXPIRY_DAYS = 2
    client = _connected(hard_client(), company)
    assert 2 * 86400 - 5 <= client.x_refresh_token_hard_expires_in <= 2 * 86400
    assert client.x_refresh_token_expires_in <= client.x_refresh_token_hard_expires_in
    client.refresh()
    assert client.x_refresh_token_expires_in <= client.x_refresh_token_hard_expires_in


def test_a_refresh_past_the_hard_expiry_is_invalid_grant(hard_client, company, app):
    from io import StringIO

    from django.core.management import call_command

    client = _connected(hard_client(), company)
    out = StringIO()
    args = ["--realm", company.realm_id, "--client-id", app.client_id]
    call_command("qbo_sandbox", "token-expiry", *args, "--hard-expires-in-days", "10", stdout=out)
    client.refresh()
    assert 10 * 86400 - 5 <= client.x_refresh_token_hard_expires_in <= 10 * 86400
    assert client.x_refresh_token_expires_in <= 10 * 86400
    call_command("qbo_sandbox", "token-expiry", *args, "--hard-expires-in-days", "0", stdout=out)
    with pytest.raises(AuthClientError) as exc:
        client.refresh()
    assert exc.value.status_code == 400
    assert exc.value.response.json() == {"error": "invalid_grant"}


def test_the_fault_api_sets_the_hard_expiry(auth_client_factory, tokens, company, base_url):
    answer = requests.post(
        f"{base_url}/api/faults/{company.realm_id}",
        json={"refresh_hard_expires_in_days": 0},
        headers={"X-Sandbox-Admin-Token": "test-admin-token"},
        timeout=10,
    )
    assert answer.status_code == 200
    with pytest.raises(AuthClientError) as exc:
        auth_client_factory().refresh(refresh_token=tokens["refresh_token"])
    assert exc.value.response.json() == {"error": "invalid_grant"}
