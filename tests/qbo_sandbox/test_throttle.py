import pytest
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.customer import Customer

from qbo_sandbox import services

pytestmark = pytest.mark.django_db(transaction=True)
THROTTLE_XML = (
    '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
    "errorCode=003001; statusCode=429</Message>"
)


def test_burst_over_the_per_minute_limit_is_429_xml(api, company):
    services.faults_set(company=company, throttle_enabled=True, per_minute=5, per_second=100)
    statuses = [api.get("preferences").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    response = api.get("preferences")
    assert THROTTLE_XML in response.text
    assert response.headers["Content-Type"].startswith("application/xml")


def test_per_second_limit(api, company):
    services.faults_set(company=company, throttle_enabled=True, per_minute=500, per_second=3)
    statuses = [api.get("preferences").status_code for _ in range(10)]
    # At most 3 pass per second: even split across a second boundary, 4 or more are refused.
    assert statuses.count(429) >= 4 and statuses[:3] == [200, 200, 200]


def test_batch_limit_and_json_format(api, company):
    services.faults_set(
        company=company,
        throttle_enabled=True,
        batch_per_minute=1,
        per_second=100,
        throttle_format="json",
    )
    items = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Customer"}]}
    assert api.post("batch", json=items).status_code == 200
    response = api.post("batch", json=items)
    assert response.status_code == 429
    assert response.json()["fault"]["error"][0]["code"] == "3001"
    assert api.get("preferences").status_code == 200  # plain requests still pass
    # The router takes service names in any case; so must the batch limit.
    assert api.post("Batch", json=items).status_code == 429


def test_python_quickbooks_sees_429_as_a_generic_error(qb, company):
    services.faults_set(company=company, throttle_burst=1)
    with pytest.raises(QuickbooksException) as exc:
        Customer.all(qb=qb)
    # The XML body is not JSON: python-quickbooks reports code 10000.
    assert exc.value.error_code == 10000


def test_throttle_off_by_setting_on_by_company_default(settings, api, company):
    settings.QBO_SANDBOX_THROTTLE_ENABLED = True
    services.faults_set(company=company, per_minute=2)
    assert [api.get("preferences").status_code for _ in range(3)] == [200, 200, 429]
