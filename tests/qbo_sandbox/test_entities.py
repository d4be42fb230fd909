import re

import pytest
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    ValidationException,
)
from quickbooks.objects.account import Account
from quickbooks.objects.base import Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.term import Term
from quickbooks.objects.vendor import Vendor

pytestmark = pytest.mark.django_db(transaction=True)
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[78]:00$")
META_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[78]:00$")


def make_customer(qb, name="Swift Freight"):
    customer = Customer()
    customer.DisplayName = name
    return customer.save(qb=qb)


def make_item(qb, name="Linehaul"):
    item = Item()
    item.Name = name
    item.Type = "Service"
    item.IncomeAccountRef = Ref()
    item.IncomeAccountRef.value = "1"  # the seeded "Services" income account
    return item.save(qb=qb)


def make_invoice(qb, customer, item, amounts=(100, 50), doc_number=None):
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    for amount in amounts:
        line = SalesItemLine()
        line.Amount = amount
        line.Description = "Load 42"
        line.SalesItemLineDetail = SalesItemLineDetail()
        line.SalesItemLineDetail.ItemRef = item.to_ref()
        invoice.Line.append(line)
    if doc_number:
        invoice.DocNumber = doc_number
    return invoice.save(qb=qb)


def fault_of(response):
    assert response.status_code == 400, response.text
    body = response.json()
    assert TIME_RE.match(body["time"])
    return body["Fault"]


def test_it_shapes_a_created_customer_like_qbo(api):
    response = api.post("customer", json={"DisplayName": "Acme", "GivenName": "Ann"})
    assert response.status_code == 200
    body = response.json()
    customer = body["Customer"]
    # Id and SyncToken are strings; MetaData has no millis; time has millis and an offset.
    assert (customer["domain"], customer["sparse"], customer["SyncToken"]) == ("QBO", False, "0")
    assert customer["Id"].isdigit()
    assert META_RE.match(customer["MetaData"]["CreateTime"])
    assert TIME_RE.match(body["time"])
    assert customer["FullyQualifiedName"] == "Acme"
    assert customer["Active"] is True


def test_it_creates_reads_and_updates_a_customer_with_python_quickbooks(qb):
    customer = make_customer(qb)
    assert customer.SyncToken == "0"
    read = Customer.get(customer.Id, qb=qb)
    read.CompanyName = "Swift Freight LLC"
    read.save(qb=qb)  # a full update sending everything back, placeholders included
    again = Customer.get(customer.Id, qb=qb)
    assert (again.SyncToken, again.CompanyName) == ("1", "Swift Freight LLC")


def test_sparse_update_changes_only_the_fields_sent(api):
    created = api.post("customer", json={"DisplayName": "Keep", "Notes": "n1"}).json()["Customer"]
    updated = api.post(
        "customer",
        json={"Id": created["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "Co"},
    ).json()["Customer"]
    assert (updated["Notes"], updated["CompanyName"], updated["SyncToken"]) == ("n1", "Co", "1")
    # A full update drops what was omitted.
    full = api.post("customer", json={"Id": created["Id"], "SyncToken": "1", "DisplayName": "Keep"})
    assert "Notes" not in full.json()["Customer"]


def test_display_name_is_built_from_names_when_missing(api):
    customer = api.post("customer", json={"GivenName": "Jane", "FamilyName": "Doe"}).json()
    assert customer["Customer"]["DisplayName"] == "Jane Doe"


def test_duplicate_display_name_across_customer_and_vendor_is_6240(qb, api):
    customer = make_customer(qb, "Road Kings")
    # Case-insensitive and shared with Vendor: QBO's one name namespace.
    fault = fault_of(api.post("vendor", json={"DisplayName": "road kings"}))
    assert fault == {
        "Error": [
            {
                "Message": "Duplicate Name Exists Error",
                "Detail": f"The name supplied already exists. : Id={customer.Id}",
                "code": "6240",
            }
        ],
        "type": "ValidationFault",
    }
    vendor = Vendor()
    vendor.DisplayName = "ROAD KINGS"
    with pytest.raises(QuickbooksException) as exc:
        vendor.save(qb=qb)
    assert exc.value.error_code == 6240


def test_item_names_are_unique(qb):
    make_item(qb, "Fuel")
    with pytest.raises(QuickbooksException) as exc:
        make_item(qb, "fuel")
    assert exc.value.error_code == 6240


def test_account_and_term_basic_crud(qb):
    account = Account()
    account.Name = "Freight Income"
    account.AccountType = "Income"
    account.save(qb=qb)
    term = Term()
    term.Name = "Net 45"
    term.DueDays = 45
    term.save(qb=qb)
    assert Account.get(account.Id, qb=qb).Classification == "Revenue"
    assert Term.get(term.Id, qb=qb).DueDays == 45


def test_invoice_totals_and_balance_are_computed(qb):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(100, "50.25"))
    assert (invoice.TotalAmt, invoice.Balance) == (150.25, 150.25)
    # QBO adds a subtotal line and numbers the lines.
    assert [line.DetailType for line in invoice.Line] == [
        "SalesItemLineDetail",
        "SalesItemLineDetail",
        "SubTotalLineDetail",
    ]
    assert [line.Id for line in invoice.Line[:2]] == ["1", "2"]


def test_invoice_without_customer_is_2020(api):
    fault = fault_of(api.post("invoice", json={"Line": [{"Amount": 1}]}))
    assert fault["Error"][0] == {
        "Message": "Required param missing, need to supply the required value for the API",
        "Detail": "Required parameter CustomerRef is missing in the request",
        "code": "2020",
        "element": "CustomerRef",
    }


def test_invoice_without_lines_is_2020(qb):
    customer = make_customer(qb)
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    with pytest.raises(ValidationException) as exc:
        invoice.save(qb=qb)
    assert exc.value.error_code == 2020
    assert exc.value.detail == "Required parameter Line is missing in the request"


def test_invoice_for_an_inactive_customer_is_610(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    customer.Active = False
    customer.save(qb=qb)
    with pytest.raises(ObjectNotFoundException) as exc:
        make_invoice(qb, customer, item)
    assert exc.value.error_code == 610
    # Inactive name-list objects drop out of default queries.
    assert Customer.all(qb=qb) == []
    assert len(Customer.where("Active = false", qb=qb)) == 1


def test_invoice_for_a_missing_customer_or_item_is_2500(qb, api):
    customer = make_customer(qb)
    response = api.post(
        "invoice",
        json={
            "CustomerRef": {"value": "999"},
            "Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail"}],
        },
    )
    assert fault_of(response)["Error"][0]["code"] == "2500"
    response = api.post(
        "invoice",
        json={
            "CustomerRef": {"value": customer.Id},
            "Line": [
                {
                    "Amount": 5,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "998"}},
                }
            ],  # fmt: skip
        },
    )
    assert fault_of(response)["Error"][0]["Message"] == "Invalid Reference Id"


def test_duplicate_doc_number_is_6140_with_intuits_detail(qb, company):
    customer, item = make_customer(qb), make_item(qb)
    first = make_invoice(qb, customer, item, doc_number="1001")
    with pytest.raises(QuickbooksException) as exc:
        make_invoice(qb, customer, item, doc_number="1001")
    assert exc.value.error_code == 6140
    assert exc.value.detail == (
        "Duplicate Document Number Error : You must specify a different number. This number "
        f"has already been used. DocNumber=1001 is assigned to TxnType=Invoice with TxnId={first.Id}"
    )
    # With the company setting off, duplicates are allowed.
    company.warn_duplicate_doc_number = False
    company.save()
    assert make_invoice(qb, customer, item, doc_number="1001").DocNumber == "1001"


def test_doc_number_over_21_chars_and_long_descriptions_are_refused(qb, api):
    customer = make_customer(qb)
    base = {"CustomerRef": {"value": customer.Id}}
    response = api.post("invoice", json={**base, "DocNumber": "X" * 22, "Line": [{"Amount": 1}]})
    assert fault_of(response)["Error"][0]["element"] == "DocNumber"
    response = api.post(
        "invoice", json={**base, "Line": [{"Amount": 1, "Description": "d" * 4001}]}
    )
    assert fault_of(response)["Error"][0]["element"] == "Description"


def test_stale_sync_token_is_5010(api):
    created = api.post("customer", json={"DisplayName": "Stale"}).json()["Customer"]
    api.post("customer", json={"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "a"})
    fault = fault_of(
        api.post(
            "customer", json={"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "b"}
        )
    )
    assert fault["Error"][0]["code"] == "5010"
    assert fault["Error"][0]["Message"] == "Stale Object Error"


def test_unknown_property_is_2010(api):
    fault = fault_of(api.post("customer", json={"DisplayName": "X", "Bogus": 1}))
    assert fault["Error"][0]["code"] == "2010"
    assert 'Unrecognized field "Bogus"' in fault["Error"][0]["Detail"]


def test_bad_id_is_2030_and_missing_id_is_610(api):
    fault = fault_of(api.get("customer/1.5"))
    assert fault["Error"][0] == {
        "Message": "Invalid ID",
        "Detail": "Id should be a valid number. Supplied value:1.5",
        "code": "2030",
        "element": "Id",
    }
    assert fault_of(api.get("customer/424242"))["Error"][0]["code"] == "610"


def test_bad_bearer_is_401_with_the_gateway_envelope(api):
    api.headers = {**api.headers, "Authorization": "Bearer nope"}
    response = api.get("customer/1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    body = response.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["error"][0]["message"] == (
        "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    )
    assert isinstance(body["time"], int) and body["intuitObject"] is None


def test_python_quickbooks_sees_401_as_authorization_exception(qb_factory, tokens):
    client = qb_factory({**tokens, "access_token": "expired"})
    with pytest.raises(AuthorizationException):
        Customer.get(1, qb=client)


def test_delete_invoice_then_again_is_610(qb):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item)
    result = invoice.delete(qb=qb)
    assert result["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice.Id}
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(invoice.Id, qb=qb)
    with pytest.raises(ObjectNotFoundException):
        invoice.delete(qb=qb)


def test_name_list_objects_cannot_be_deleted(api):
    created = api.post("customer", json={"DisplayName": "Forever"}).json()["Customer"]
    response = api.post(
        "customer", json={"Id": created["Id"], "SyncToken": "0"}, params={"operation": "delete"}
    )
    assert fault_of(response)["Error"][0]["code"] == "500"


def test_void_invoice_zeroes_amounts(qb):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item)
    invoice.void(qb=qb)
    voided = Invoice.get(invoice.Id, qb=qb)
    assert (voided.TotalAmt, voided.Balance, voided.PrivateNote) == (0, 0, "Voided")
    assert voided.SyncToken == "1"
    assert [line.Amount for line in voided.Line] == [0, 0, 0]


def test_payments_reduce_balance_and_void_restores_it(qb):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(200,))
    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = 120
    line = PaymentLine()
    line.Amount = 80
    line.LinkedTxn.append(invoice.to_linked_txn())
    payment.Line.append(line)
    saved = payment.save(qb=qb)
    assert saved.UnappliedAmt == 40
    paid = Invoice.get(invoice.Id, qb=qb)
    assert paid.Balance == 120
    assert paid.LinkedTxn[0].TxnId == payment.Id and paid.LinkedTxn[0].TxnType == "Payment"
    payment.void(qb=qb)
    assert Payment.get(payment.Id, qb=qb).TotalAmt == 0
    assert Invoice.get(invoice.Id, qb=qb).Balance == 200


def test_deleting_a_payment_restores_the_balance(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(90,))
    payment = api.post(
        "payment",
        json={
            "CustomerRef": {"value": customer.Id},
            "TotalAmt": 90,
            "Line": [{"Amount": 90, "LinkedTxn": [{"TxnId": invoice.Id, "TxnType": "Invoice"}]}],
        },  # fmt: skip
    ).json()["Payment"]
    assert Invoice.get(invoice.Id, qb=qb).Balance == 0
    api.post(
        "payment", json={"Id": payment["Id"], "SyncToken": "0"}, params={"operation": "delete"}
    )
    assert Invoice.get(invoice.Id, qb=qb).Balance == 90


def test_payment_requires_customer_and_total(api):
    assert (
        fault_of(api.post("payment", json={"TotalAmt": 5}))["Error"][0]["element"] == "CustomerRef"
    )


def test_credit_memo_applied_by_a_payment_reduces_the_invoice(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(100,))
    memo = CreditMemo()
    memo.CustomerRef = customer.to_ref()
    line = SalesItemLine()
    line.Amount = 30
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    memo.Line.append(line)
    memo = memo.save(qb=qb)
    assert (memo.TotalAmt, memo.RemainingCredit) == (30, 30)
    api.post(
        "payment",
        json={
            "CustomerRef": {"value": customer.Id},
            "TotalAmt": 0,
            "Line": [
                {"Amount": 30, "LinkedTxn": [{"TxnId": invoice.Id, "TxnType": "Invoice"}]},
                {"Amount": 30, "LinkedTxn": [{"TxnId": memo.Id, "TxnType": "CreditMemo"}]},
            ],
        },  # fmt: skip
    )
    assert Invoice.get(invoice.Id, qb=qb).Balance == 70
    assert CreditMemo.get(memo.Id, qb=qb).RemainingCredit == 0


def test_generic_entities_work_without_rules(api):
    # Bill has rules of its own now (test_payables.py); an Estimate still has none.
    estimate = api.post("estimate", json={"CustomerRef": {"value": "1"}, "TotalAmt": 12}).json()[
        "Estimate"
    ]
    assert api.get(f"estimate/{estimate['Id']}").json()["Estimate"]["TotalAmt"] == 12


def test_ref_objects_and_preferences_and_companyinfo(qb, api, company):
    assert (
        api.get("preferences").json()["Preferences"]["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    )
    info = api.get(f"companyinfo/{company.realm_id}").json()["CompanyInfo"]
    assert info["CompanyName"] == "Acme Trucking"
    assert isinstance(Ref(), Ref)


def test_customer_balance_follows_open_invoices(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(100,))
    make_invoice(qb, customer, item, amounts=(40,))
    assert Customer.get(customer.Id, qb=qb).Balance == 140
    api.post(
        "payment",
        json={
            "CustomerRef": {"value": customer.Id},
            "TotalAmt": 100,
            "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": invoice.Id, "TxnType": "Invoice"}]}],
        },  # fmt: skip
    )
    read = Customer.get(customer.Id, qb=qb)
    # The balance moves without bumping the customer's SyncToken.
    assert (read.Balance, read.SyncToken) == (40, "0")


def test_pdf_and_send(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, doc_number="P-1")
    assert invoice.download_pdf(qb=qb).startswith(b"%PDF-1.4")
    sent = invoice.send(qb=qb, send_to="ap@example.com")
    assert sent["Invoice"]["EmailStatus"] == "EmailSent"
    assert sent["Invoice"]["BillEmail"] == {"Address": "ap@example.com"}


def test_generic_transactions_can_be_voided_and_deleted(api):
    receipt = api.post("salesreceipt", json={"TotalAmt": 30, "Line": [{"Amount": 30}]}).json()[
        "SalesReceipt"
    ]
    voided = api.post(
        "salesreceipt",
        json={"Id": receipt["Id"], "SyncToken": "0", "sparse": True},
        params={"operation": "update", "include": "void"},
    ).json()["SalesReceipt"]
    assert (voided["TotalAmt"], voided["PrivateNote"], voided["SyncToken"]) == (0.0, "Voided", "1")
    deleted = api.post(
        "salesreceipt", json={"Id": receipt["Id"], "SyncToken": "1"}, params={"operation": "delete"}
    )
    assert deleted.json()["SalesReceipt"]["status"] == "Deleted"


def test_read_modify_save_round_trips_for_invoice_and_payment(qb):
    customer, item = make_customer(qb), make_item(qb)
    invoice = Invoice.get(make_invoice(qb, customer, item, amounts=(70, 30)).Id, qb=qb)
    invoice.PrivateNote = "edited"
    invoice.save(qb=qb)  # sends back the subtotal line, MetaData, placeholders...
    again = Invoice.get(invoice.Id, qb=qb)
    assert (again.TotalAmt, again.Balance, again.PrivateNote, again.SyncToken) == (
        100,
        100,
        "edited",
        "1",
    )
    assert len(again.Line) == 3
    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = 25
    line = PaymentLine()
    line.Amount = 25
    line.LinkedTxn.append(again.to_linked_txn())
    payment.Line.append(line)
    read = Payment.get(payment.save(qb=qb).Id, qb=qb)
    read.PrivateNote = "check 1001"
    read.save(qb=qb)
    assert Invoice.get(invoice.Id, qb=qb).Balance == 75


def test_deleting_a_paid_invoice_leaves_the_payment_unapplied(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(60,))
    payment = api.post(
        "payment",
        json={
            "CustomerRef": {"value": customer.Id},
            "TotalAmt": 60,
            "Line": [{"Amount": 60, "LinkedTxn": [{"TxnId": invoice.Id, "TxnType": "Invoice"}]}],
        },  # fmt: skip
    ).json()["Payment"]
    assert payment["UnappliedAmt"] == 0
    current = Invoice.get(invoice.Id, qb=qb)
    current.delete(qb=qb)
    after = Payment.get(payment["Id"], qb=qb)
    assert (after.UnappliedAmt, after.Line, after.SyncToken) == (60, [], "1")


def test_voiding_a_paid_invoice_unapplies_the_payment_in_one_version(qb, api):
    customer, item = make_customer(qb), make_item(qb)
    invoice = make_invoice(qb, customer, item, amounts=(80,))
    api.post(
        "payment",
        json={
            "CustomerRef": {"value": customer.Id},
            "TotalAmt": 30,
            "Line": [{"Amount": 30, "LinkedTxn": [{"TxnId": invoice.Id, "TxnType": "Invoice"}]}],
        },  # fmt: skip
    )
    current = Invoice.get(invoice.Id, qb=qb)  # SyncToken 1 after the payment
    voided = api.post("invoice", json={"Id": invoice.Id, "SyncToken": current.SyncToken},
                      params={"operation": "void"}).json()["Invoice"]  # fmt: skip
    stored = Invoice.get(invoice.Id, qb=qb)
    # The response and the stored object agree, so the next update is not stale.
    assert voided["SyncToken"] == stored.SyncToken == "2"
    assert (stored.Balance, stored.LinkedTxn) == (0, [])


def test_customer_balance_is_read_only(api):
    created = api.post("customer", json={"DisplayName": "Ro", "Balance": 99}).json()["Customer"]
    assert created["Balance"] == 0
    updated = api.post(
        "customer", json={"Id": created["Id"], "SyncToken": "0", "sparse": True, "Balance": 5}
    ).json()["Customer"]
    assert updated["Balance"] == 0
