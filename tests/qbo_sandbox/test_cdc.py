import datetime as dt

import pytest
from quickbooks.cdc import change_data_capture
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_cdc_returns_changes_and_deleted_stubs(qb, api):
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    customer = api.post("customer", json={"DisplayName": "CDC"}).json()["Customer"]
    keep, gone = (
        api.post(
            "invoice", json={"CustomerRef": {"value": customer["Id"]}, "Line": [{"Amount": 5}]}
        ).json()["Invoice"]
        for _ in range(2)
    )
    api.post("invoice", json={"Id": gone["Id"], "SyncToken": "0"}, params={"operation": "delete"})
    body = api.get(
        "cdc", params={"entities": "Invoice,Customer", "changedSince": since.isoformat()}
    ).json()
    invoices, customers = body["CDCResponse"][0]["QueryResponse"]
    # Active objects first, then the deleted ones as stubs.
    assert [i["Id"] for i in invoices["Invoice"]] == [keep["Id"], gone["Id"]]
    assert invoices["Invoice"][1] == {
        "domain": "QBO", "status": "Deleted", "Id": gone["Id"],
        "MetaData": {"LastUpdatedTime": invoices["Invoice"][1]["MetaData"]["LastUpdatedTime"]},
    }  # fmt: skip
    assert customers["Customer"][0]["DisplayName"] == "CDC"
    # python-quickbooks parses it.
    result = change_data_capture([Invoice, Customer], since.isoformat(), qb=qb)
    assert [c.DisplayName for c in result.Customer] == ["CDC"]


def test_cdc_after_changes_only(api):
    customer = api.post("customer", json={"DisplayName": "Old"}).json()["Customer"]
    since = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    body = api.get("cdc", params={"entities": "Customer", "changedSince": since.isoformat()}).json()
    assert body["CDCResponse"] == [{"QueryResponse": [{}]}]
    assert customer["Id"]


def test_cdc_lookback_over_30_days_is_a_fault(api):
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).isoformat()
    response = api.get("cdc", params={"entities": "Customer", "changedSince": since})
    assert response.status_code == 400
    assert (
        "older than fixed days is not supported" in response.json()["Fault"]["Error"][0]["Detail"]
    )
