import pytest

from qbo_sandbox import services
from qbo_sandbox.models import Entity
from qbo_sandbox.store import Ctx, entity_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def invoice(company):
    ctx = Ctx(company)
    customer = entity_create(ctx, "Customer", {"DisplayName": "UI Customer"})
    return entity_create(
        ctx, "Invoice", {"CustomerRef": {"value": str(customer.qbo_id)}, "Line": [{"Amount": 250}]}
    )


def url(company, *parts):
    return "/qbo-sandbox/company/" + "/".join([company.realm_id, *map(str, parts)])


def test_company_pages_list_objects(client, company, invoice, signed_in):
    assert company.realm_id in client.get("/qbo-sandbox/").content.decode()
    page = client.get(url(company) + "/").content.decode()
    assert 'data-entity="Invoice">1<' in page
    detail = client.get(url(company, "Invoice", invoice.qbo_id) + "/").content.decode()
    assert "Receive payment" in detail and "Void invoice" in detail and "Delete invoice" in detail


def test_receive_a_partial_payment(client, company, invoice, signed_in):
    response = client.post(
        url(company, "invoice", invoice.qbo_id, "receive-payment"), {"amount": "100.00"}
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.data["Balance"] == 150.0
    payment = Entity.objects.get(entity_type="Payment")
    assert payment.data["Line"][0]["LinkedTxn"] == [
        {"TxnId": str(invoice.qbo_id), "TxnType": "Invoice"}
    ]


def test_void_and_delete_invoice(client, company, invoice, signed_in):
    client.post(url(company, "invoice", invoice.qbo_id, "void"))
    invoice.refresh_from_db()
    assert (invoice.data["TotalAmt"], invoice.data["PrivateNote"]) == (0.0, "Voided")
    client.post(url(company, "invoice", invoice.qbo_id, "delete"))
    invoice.refresh_from_db()
    assert invoice.deleted is True


def test_edit_customer_and_see_the_fault_on_a_clash(client, company, invoice, signed_in):
    customer = Entity.objects.get(entity_type="Customer")
    entity_create(Ctx(company), "Vendor", {"DisplayName": "Taken Name"})
    edit = url(company, "customer", customer.qbo_id, "edit")
    client.post(edit, {"display_name": "New Name", "email": "ap@example.com"})
    customer.refresh_from_db()
    assert customer.data["DisplayName"] == "New Name"
    assert customer.data["PrimaryEmailAddr"] == {"Address": "ap@example.com"}
    response = client.post(edit, {"display_name": "taken name"}, follow=True)
    assert "Duplicate Name Exists Error (6240)" in response.content.decode()
    assert (
        services.entity_get(company=company, entity_type="Customer", qbo_id=customer.qbo_id)[
            "SyncToken"
        ]
        == "1"
    )


def test_get_does_not_change_state(client, company, invoice, signed_in):
    assert client.get(url(company, "invoice", invoice.qbo_id, "void")).status_code == 405
