import pytest
from quickbooks.batch import batch_create
from quickbooks.objects.customer import Customer

pytestmark = pytest.mark.django_db(transaction=True)


def test_batch_of_30_creates_through_python_quickbooks(qb):
    customers = []
    for n in range(30):
        customer = Customer()
        customer.DisplayName = f"Batch {n:02d}"
        customers.append(customer)
    result = batch_create(customers, qb=qb)
    assert len(result.successes) == 30 and result.faults == []
    assert Customer.count(qb=qb) == 30


def test_batch_of_31_is_refused_as_a_whole(api):
    items = [
        {"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"C{n}"}}
        for n in range(31)
    ]
    response = api.post("batch", json={"BatchItemRequest": items})
    assert response.status_code == 400
    assert response.json()["Fault"]["type"] == "ValidationFault"
    assert api.query("SELECT COUNT(*) FROM Customer").json()["QueryResponse"] == {"totalCount": 0}


def test_items_succeed_or_fail_independently(api):
    existing = api.post("customer", json={"DisplayName": "Taken"}).json()["Customer"]
    items = [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Fresh"}},
        {"bId": "b", "operation": "create", "Customer": {"DisplayName": "taken"}},
        {
            "bId": "c",
            "operation": "update",
            "Customer": {"Id": existing["Id"], "SyncToken": "7", "sparse": True},
        },
        {"bId": "d", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Taken'"},
    ]
    body = api.post("batch", json={"BatchItemRequest": items}).json()
    results = {item["bId"]: item for item in body["BatchItemResponse"]}
    assert results["a"]["Customer"]["DisplayName"] == "Fresh"
    assert results["b"]["Fault"]["Error"][0]["code"] == "6240"
    assert results["b"]["Fault"]["Error"][0]["element"] == ""
    assert results["c"]["Fault"]["Error"][0]["code"] == "5010"
    assert results["d"]["QueryResponse"]["Customer"][0]["Id"] == existing["Id"]


def test_batch_delete_and_void(api):
    customer = api.post("customer", json={"DisplayName": "V"}).json()["Customer"]
    invoices = [
        api.post(
            "invoice", json={"CustomerRef": {"value": customer["Id"]}, "Line": [{"Amount": 10}]}
        ).json()["Invoice"]
        for _ in range(2)
    ]
    items = [
        {"bId": "del", "operation": "delete", "Invoice": {"Id": invoices[0]["Id"], "SyncToken": "0"}},
        {"bId": "void", "operation": "update", "optionsData": "void",
         "Invoice": {"Id": invoices[1]["Id"], "SyncToken": "0"}},
    ]  # fmt: skip
    body = api.post("batch", json={"BatchItemRequest": items}).json()["BatchItemResponse"]
    assert body[0]["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoices[0]["Id"]}
    assert body[1]["Invoice"]["PrivateNote"] == "Voided"


def test_requestid_applies_per_bid(api):
    items = [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Once"}}]
    first = api.post("batch", json={"BatchItemRequest": items}, params={"requestid": "rq-b"}).json()
    again = api.post("batch", json={"BatchItemRequest": items}, params={"requestid": "rq-b"}).json()
    assert again["BatchItemResponse"] == first["BatchItemResponse"]
    assert api.query("SELECT COUNT(*) FROM Customer").json()["QueryResponse"]["totalCount"] == 1
    long_id = "r" * 50
    body = api.post("batch", json={"BatchItemRequest": items}, params={"requestid": long_id}).json()
    assert body["BatchItemResponse"][0]["Fault"]["Error"][0]["code"] == "6000"
