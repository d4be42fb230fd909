import time

import pytest
import requests
from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException, SevereException
from quickbooks.objects.customer import Customer

from qbo_sandbox import services
from qbo_sandbox.models import Entity

pytestmark = pytest.mark.django_db(transaction=True)


def test_error_rate_systemfault_is_10000_with_http_500(qb, api, company):
    services.faults_set(company=company, error_rate=1.0, error_style="systemfault")
    response = api.get("customer/1")
    assert response.status_code == 500
    fault = response.json()["Fault"]
    assert fault["type"] == "SystemFault"
    assert fault["Error"][0]["code"] == "10000"
    assert (
        fault["Error"][0]["Message"]
        == "An application error has occurred while processing your request"
    )
    with pytest.raises(SevereException):
        Customer.get(1, qb=qb)


def test_error_rate_gateway_is_a_lowercase_500(api, company):
    services.faults_set(company=company, error_rate=1.0, error_style="gateway")
    response = api.get("customer/1")
    assert response.status_code == 500
    assert response.json()["fault"]["error"][0]["message"] == (
        "message=InternalServerError; errorCode=003100; statusCode=500"
    )


def test_latency_is_added(api, company):
    services.faults_set(company=company, latency_ms=300)
    started = time.monotonic()
    api.get("preferences")
    assert time.monotonic() - started >= 0.3


def test_throttle_burst_gives_the_next_n_requests_429(api, company):
    services.faults_set(company=company, throttle_burst=2)
    assert [api.get("preferences").status_code for _ in range(3)] == [429, 429, 200]


def test_commit_then_timeout_504_keeps_the_write(api, company):
    services.faults_set(company=company, commit_then_timeout_rate=1.0, timeout_mode="504")
    response = api.post("customer", json={"DisplayName": "Ghost"}, params={"requestid": "g-1"})
    assert response.status_code == 504
    assert Entity.objects.filter(entity_type="Customer", name_key="ghost").count() == 1
    # Retrying with the same requestid replays instead of writing twice.
    services.faults_clear(company=company)
    retry = api.post("customer", json={"DisplayName": "Ghost"}, params={"requestid": "g-1"})
    assert retry.status_code == 200
    assert Entity.objects.filter(entity_type="Customer").count() == 1


def test_commit_then_timeout_sleep_makes_the_client_time_out(api, company):
    services.faults_set(
        company=company,
        commit_then_timeout_rate=1.0,
        timeout_mode="sleep",
        timeout_sleep_seconds=1.0,
    )
    with pytest.raises(requests.Timeout):
        api.post("customer", json={"DisplayName": "Slow"}, timeout=0.3)
    assert Entity.objects.filter(entity_type="Customer", name_key="slow").count() == 1


def test_expire_tokens_makes_access_tokens_401_until_refresh(
    qb_factory, auth_client_factory, tokens, api, company
):
    services.faults_set(company=company, expire_tokens=True)
    assert api.get("preferences").status_code == 401
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qb_factory(tokens))
    client = auth_client_factory()
    client.refresh(refresh_token=tokens["refresh_token"])
    fresh = qb_factory({"access_token": client.access_token, "refresh_token": client.refresh_token})
    assert Customer.all(qb=fresh) == []


def test_revoke_refresh_tokens(auth_client_factory, tokens, company):
    services.faults_set(company=company, revoke_refresh_tokens=True)
    with pytest.raises(AuthClientError) as exc:
        auth_client_factory().refresh(refresh_token=tokens["refresh_token"])
    assert exc.value.status_code == 400


def test_faults_api_needs_the_admin_token(base_url, company):
    url = f"{base_url}/api/faults/{company.realm_id}"
    assert requests.post(url, json={"latency_ms": 5}).status_code == 403
    headers = {"X-Sandbox-Admin-Token": "test-admin-token"}
    body = requests.post(url, json={"latency_ms": 5, "error_rate": 0.5}, headers=headers).json()
    assert (body["latency_ms"], body["error_rate"]) == (5, 0.5)
    body = requests.post(url, json={"clear": True}, headers=headers).json()
    assert (body["latency_ms"], body["error_rate"]) == (0, 0.0)
    assert requests.post(url, json={"bogus": 1}, headers=headers).status_code == 400


def test_short_token_lifetime_expires_old_tokens(api, company):
    import datetime as dt

    from qbo_sandbox.models import Token

    services.faults_set(company=company, expire_tokens_every_seconds=60)
    assert api.get("preferences").status_code == 200
    # Age the token instead of sleeping.
    Token.objects.update(created=Token.objects.get().created - dt.timedelta(seconds=61))
    assert api.get("preferences").status_code == 401


def test_a_token_for_another_realm_is_403(api, company):
    other = services.company_create(name="Other Books")
    api.root = api.root.replace(company.realm_id, other.realm_id)
    response = api.get("preferences")
    assert response.status_code == 403
    assert response.json()["fault"]["error"][0]["code"] == "3100"
