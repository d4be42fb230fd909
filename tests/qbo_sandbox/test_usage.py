"""The App Partner Program meter: Core / CorePlus per realm, app and month, and the allowance."""

import datetime as dt
import json
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from qbo_sandbox import services, usage
from qbo_sandbox.models import UsageCounter

from .conftest import REDIRECT_URI

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = {"X-Sandbox-Admin-Token": "test-admin-token"}
LIMIT_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"


def counts(app, company):
    row = UsageCounter.objects.filter(app=app, company=company, month=usage.month_start()).first()
    if row is None:
        return dict.fromkeys(usage.COUNTER_FIELDS, 0)
    return {name: getattr(row, name) for name in usage.COUNTER_FIELDS}


def run(*args):
    out = StringIO()
    call_command("qbo_sandbox", *args, stdout=out)
    return out.getvalue().strip()


class Bearer:
    """The v3 API of one realm with one access token."""

    def __init__(self, base_url, realm, access_token):
        self.root = f"{base_url}/v3/company/{realm}"
        self.headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}

    def get(self, path, **params):
        return requests.get(f"{self.root}/{path}", params=params, headers=self.headers, timeout=10)

    def post(self, path, **kw):
        return requests.post(f"{self.root}/{path}", headers=self.headers, timeout=10, **kw)

    def query(self, sql):
        headers = {**self.headers, "Content-Type": "application/text"}
        return requests.post(f"{self.root}/query", data=sql, headers=headers, timeout=10)


@pytest.fixture
def second(app, base_url):
    """Another company connected to the same app."""
    other = services.company_create(name="Second Haul")
    pair = services.tokens_issue(app=app, company=other)
    return other, Bearer(base_url, other.realm_id, pair["access_token"])


def test_a_create_is_core_reads_queries_and_cdc_are_coreplus(api, app, company):
    customer = api.post("customer", json={"DisplayName": "Metered"}).json()["Customer"]
    api.get(f"customer/{customer['Id']}")
    api.get("preferences")
    api.get("companyinfo/1")
    api.query("SELECT * FROM Customer")
    api.get("cdc", params={"entities": "Customer", "changedSince": "2026-01-01"})
    assert counts(app, company) == {
        "core": 1,
        "coreplus": 5,
        "coreplus_read": 3,
        "coreplus_query": 1,
        "coreplus_cdc": 1,
    }


def test_validation_faults_count_refusals_before_the_service_do_not(api, app, company, base_url):
    api.post("customer", json={"DisplayName": "Twice"})
    duplicate = api.post("customer", json={"DisplayName": "Twice"})
    assert duplicate.status_code == 400  # 6240, served: counted
    assert api.get("customer/999999").status_code == 400  # not found, served: counted
    before = counts(app, company)
    assert (before["core"], before["coreplus"]) == (2, 1)
    # 401: a bad token; 403: a live token for another realm; 429: the per-minute throttle.
    bad = Bearer(base_url, company.realm_id, "not-a-token")
    assert bad.get("preferences").status_code == 401
    other = services.company_create(name="Elsewhere", seed=False)
    foreign = services.tokens_issue(app=app, company=other)["access_token"]
    assert Bearer(base_url, company.realm_id, foreign).get("preferences").status_code == 403
    services.faults_set(company=company, throttle_burst=2)
    assert api.get("preferences").status_code == 429
    assert api.post("customer", json={"DisplayName": "Throttled"}).status_code == 429
    assert counts(app, company) == before


def test_oauth_and_sandbox_only_endpoints_are_not_metered(
    api, app, company, tokens, base_url, auth_client_factory
):
    client = auth_client_factory()
    client.refresh(refresh_token=tokens["refresh_token"])
    requests.get(base_url + "/.well-known/openid_configuration", timeout=10)
    requests.get(base_url + "/op/v1/jwks", timeout=10)
    requests.get(
        base_url + "/v1/openid_connect/userinfo",
        headers={"Authorization": "Bearer " + client.access_token},
        timeout=10,
    )
    requests.get(f"{base_url}/api/faults/{company.realm_id}", headers=ADMIN, timeout=10)
    requests.get(f"{base_url}/usage/{company.realm_id}/", headers=ADMIN, timeout=10)
    assert not UsageCounter.objects.exists()
    api.get("preferences")  # the meter is on: one real call is counted
    assert counts(app, company)["coreplus"] == 1


def test_a_batch_counts_each_item_by_its_kind(api, app, company):
    items = [
        {"bId": "1", "operation": "create", "Customer": {"DisplayName": "B1"}},
        {"bId": "2", "operation": "create", "Customer": {"DisplayName": "B2"}},
        {"bId": "3", "Query": "SELECT * FROM Customer"},
    ]
    assert api.post("batch", json={"BatchItemRequest": items}).status_code == 200
    got = counts(app, company)
    assert (got["core"], got["coreplus"], got["coreplus_query"]) == (2, 1, 1)


def test_counts_are_per_realm_and_per_app(api, app, company, second, base_url):
    other_company, other_api = second
    other_app = services.app_create(redirect_uris=[REDIRECT_URI])
    third = services.tokens_issue(app=other_app, company=company)
    api.get("preferences")
    other_api.get("preferences")
    other_api.get("preferences")
    Bearer(base_url, company.realm_id, third["access_token"]).post(
        "customer", json={"DisplayName": "Other app"}
    )
    assert counts(app, company)["coreplus"] == 1
    assert counts(app, other_company)["coreplus"] == 2
    assert (counts(other_app, company)["core"], counts(other_app, company)["coreplus"]) == (1, 0)


def test_the_usage_command_in_text_and_json(api, app, company):
    api.post("customer", json={"DisplayName": "Cmd"})
    api.get("preferences")
    api.query("SELECT * FROM Customer")
    data = json.loads(run("usage", "--realm", company.realm_id, "--json"))
    assert data["realm"] == company.realm_id
    assert data["month"] == timezone.now().astimezone(dt.UTC).strftime("%Y-%m")
    assert (data["core"], data["coreplus"]) == (1, 2)
    [row] = data["apps"]
    assert row["client_id"] == app.client_id
    assert (row["coreplus_read"], row["coreplus_query"], row["coreplus_cdc"]) == (1, 1, 0)
    assert row["coreplus_allowance"] == 500_000
    text = run("usage", "--realm", company.realm_id)
    line = next(li for li in text.splitlines() if li.startswith(app.client_id))
    assert line.split()[1:6] == ["1", "2", "1", "1", "0"]
    # Another month has nothing; --reset forgets this one.
    empty = json.loads(run("usage", "--realm", company.realm_id, "--month", "2020-01", "--json"))
    assert (empty["apps"], empty["core"]) == ([], 0)
    reset = json.loads(run("usage", "--realm", company.realm_id, "--reset", "--json"))
    assert (reset["apps"], reset["coreplus"]) == ([], 0)


def test_the_usage_endpoint_needs_the_admin_token_and_resets(api, app, company, base_url):
    api.get("preferences")
    url = f"{base_url}/usage/{company.realm_id}/"
    assert requests.get(url, timeout=10).status_code == 403
    data = requests.get(url, headers=ADMIN, timeout=10).json()
    assert data["coreplus"] == 1 and data["apps"][0]["client_id"] == app.client_id
    assert requests.get(url, params={"month": "May"}, headers=ADMIN, timeout=10).status_code == 400
    assert requests.post(url, timeout=10).status_code == 403
    assert requests.post(url, headers=ADMIN, timeout=10).json()["coreplus"] == 0
    assert not UsageCounter.objects.exists()


def _assert_limit_refusal(response, limit):
    assert response.status_code == 429
    error = response.json()["fault"]["error"][0]
    assert (error["code"], error["message"]) == ("3001", LIMIT_MESSAGE)
    assert error["detail"] == usage.coreplus_limit_detail(limit)
    assert f"{limit} calls this month" in error["detail"]
    now = timezone.now().astimezone(dt.UTC)
    following = dt.datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=dt.UTC)
    assert abs(int(response.headers["Retry-After"]) - (following - now).total_seconds()) < 10


def test_past_the_allowance_coreplus_is_refused_writes_go_on(api, app, company):
    usage.allowance_set(app=app, coreplus=3)
    assert [api.get("preferences").status_code for _ in range(3)] == [200, 200, 200]
    _assert_limit_refusal(api.get("preferences"), 3)
    _assert_limit_refusal(api.query("SELECT * FROM Customer"), 3)
    _assert_limit_refusal(
        api.get("cdc", params={"entities": "Customer", "changedSince": "2026-01-01"}), 3
    )
    assert api.post("customer", json={"DisplayName": "Still writes"}).status_code == 200
    got = counts(app, company)
    assert (got["coreplus"], got["core"]) == (3, 1)


def test_a_batch_past_the_allowance_faults_its_queries_only(api, app, company):
    usage.allowance_set(app=app, coreplus=1)
    items = [
        {"bId": "q1", "Query": "SELECT * FROM Customer"},
        {"bId": "w", "operation": "create", "Customer": {"DisplayName": "In a batch"}},
        {"bId": "q2", "Query": "SELECT * FROM Item"},
    ]
    response = api.post("batch", json={"BatchItemRequest": items})
    assert response.status_code == 200
    answers = {item["bId"]: item for item in response.json()["BatchItemResponse"]}
    assert "QueryResponse" in answers["q1"]
    assert answers["w"]["Customer"]["DisplayName"] == "In a batch"
    error = answers["q2"]["Fault"]["Error"][0]
    assert (error["code"], error["Message"]) == ("3001", LIMIT_MESSAGE)
    assert error["Detail"] == usage.coreplus_limit_detail(1)
    got = counts(app, company)
    assert (got["core"], got["coreplus"]) == (1, 1)


def test_the_allowance_is_shared_by_the_apps_companies(api, app, company, second):
    other_company, other_api = second
    run("allowance", "--client-id", app.client_id, "--coreplus", "3")
    assert api.get("preferences").status_code == 200
    assert other_api.get("preferences").status_code == 200
    assert other_api.get("preferences").status_code == 200
    _assert_limit_refusal(api.get("preferences"), 3)
    _assert_limit_refusal(other_api.get("preferences"), 3)
    assert counts(app, company)["coreplus"] + counts(app, other_company)["coreplus"] == 3
    shown = json.loads(run("allowance", "--client-id", app.client_id, "--json"))
    assert (shown["coreplus_allowance"], shown["coreplus_used"]) == (3, 3)
    # Back to the setting's default: the calls go through again.
    run("allowance", "--client-id", app.client_id, "--default")
    assert api.get("preferences").status_code == 200


def test_create_app_takes_an_allowance_and_the_setting_is_the_default(settings):
    made = json.loads(
        run("create-app", "--redirect-uri", REDIRECT_URI, "--coreplus-allowance", "7", "--json")
    )
    assert made["coreplus_allowance"] == 7
    settings.QBO_SANDBOX_COREPLUS_ALLOWANCE = 11
    plain = json.loads(run("create-app", "--redirect-uri", REDIRECT_URI, "--json"))
    assert plain["coreplus_allowance"] == 11


def test_the_company_page_shows_usage_per_app(client, signed_in, app, company):
    usage.allowance_set(app=app, coreplus=200)
    usage.record(app=app, company=company, month=usage.month_start(), core=4, coreplus=50,
                 coreplus_read=50)  # fmt: skip
    page = client.get(f"/qbo-sandbox/company/{company.realm_id}/").content.decode()
    assert f'data-client-id="{app.client_id}"' in page
    assert '<td data-usage="core">4</td>' in page
    assert '<td data-usage="coreplus">50</td>' in page
    assert "25.0% of 200" in page


def test_record_creates_then_updates_one_row(app, company):
    month = usage.month_start()
    usage.record(app=app, company=company, month=month, core=1)
    usage.record(app=app, company=company, month=month, core=2, coreplus=1, coreplus_cdc=1)
    row = UsageCounter.objects.get()
    assert (row.core, row.coreplus, row.coreplus_cdc) == (3, 1, 1)
