import os

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks

from qbo_sandbox import services

from .helpers import SANDBOX_EMAIL, SANDBOX_PASSWORD

os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
REDIRECT_URI = "http://127.0.0.1:9/callback"


@pytest.fixture(autouse=True)
def _sandbox_settings(settings):
    # Only the emulator's URLs; throttling off unless a test turns it on for its company.
    settings.ROOT_URLCONF = "tests.qbo_sandbox.urls"
    settings.QBO_SANDBOX_THROTTLE_ENABLED = False
    settings.QBO_SANDBOX_ADMIN_TOKEN = "test-admin-token"


@pytest.fixture
def base_url(live_server):
    return live_server.url + "/qbo-sandbox"


@pytest.fixture
def company(transactional_db):
    return services.company_create(name="Acme Trucking")


@pytest.fixture
def sandbox_user(company):
    """The QuickBooks user of `company` (and of no other): signs in to the consent page and UI."""
    return services.user_ensure(
        email=SANDBOX_EMAIL,
        password=SANDBOX_PASSWORD,
        name="Bo Books",
        realm_ids=[company.realm_id],
    )


@pytest.fixture
def signed_in(client, sandbox_user):
    """Django's test client signed in to the emulator as `sandbox_user`."""
    response = client.post(
        "/qbo-sandbox/signin", {"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}
    )
    assert response.status_code == 302, response.content
    return client


@pytest.fixture
def app(transactional_db):
    return services.app_create(redirect_uris=[REDIRECT_URI])


@pytest.fixture
def tokens(app, company):
    return services.tokens_issue(app=app, company=company)


@pytest.fixture
def auth_client_factory(base_url, app):
    def make(**kwargs):
        return AuthClient(
            app.client_id,
            app.client_secret,
            REDIRECT_URI,
            environment=base_url + "/.well-known/openid_configuration",
            **kwargs,
        )

    return make


@pytest.fixture
def qb_factory(base_url, auth_client_factory, company):
    cls = type("SandboxQuickBooks", (QuickBooks,), {"api_url_v3": base_url + "/v3"})

    def make(token_pair, realm=None):
        auth_client = auth_client_factory(access_token=token_pair["access_token"])
        return cls(
            auth_client=auth_client,
            refresh_token=token_pair["refresh_token"],
            company_id=realm or company.realm_id,
            minorversion=75,
        )

    return make


@pytest.fixture
def qb(qb_factory, tokens):
    return qb_factory(tokens)


@pytest.fixture
def api(base_url, company, tokens):
    """Plain-HTTP helper for calls python-quickbooks cannot express."""
    import requests

    class Api:
        root = f"{base_url}/v3/company/{company.realm_id}"
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": "application/json",
        }

        def post(self, path, json=None, data=None, params=None, **kw):
            params = {"minorversion": "75", **(params or {})}
            headers = dict(self.headers)
            if data is not None:
                headers["Content-Type"] = "application/text"
            return requests.post(
                f"{self.root}/{path}", json=json, data=data, params=params, headers=headers, **kw
            )

        def get(self, path, params=None, **kw):
            params = {"minorversion": "75", **(params or {})}
            return requests.get(f"{self.root}/{path}", params=params, headers=self.headers, **kw)

        def query(self, sql):
            return self.post("query", data=sql)

    return Api()


@pytest.fixture(autouse=True)
def _stop_webhook_thread(request):
    # Set up after the database fixture, so the delivery thread stops before the flush.
    if "transactional_db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("transactional_db")
    yield
    from qbo_sandbox import webhooks

    webhooks.stop()
