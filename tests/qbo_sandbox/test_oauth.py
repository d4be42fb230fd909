import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests
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
