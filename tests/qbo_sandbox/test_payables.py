"""Payables: vendors (carriers, drivers), bills, vendor credits, bill payments, purchases."""

import datetime as dt
import json

import pytest
from quickbooks.objects.base import Ref
from quickbooks.objects.bill import Bill
from quickbooks.objects.billpayment import BillPayment, BillPaymentCreditCard, BillPaymentLine
from quickbooks.objects.detailline import AccountBasedExpenseLine, AccountBasedExpenseLineDetail
from quickbooks.objects.vendor import Vendor

from qbo_sandbox import services
from qbo_sandbox.models import Entity, WebhookDelivery
from qbo_sandbox.store import Ctx, entity_create

from .test_webhooks import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

# The payables accounts a new company is seeded with (services.SEED).
AP, CHECKING, MASTERCARD, SUBCONTRACTORS, FUEL = "10", "11", "12", "13", "15"
NET_30, DUE_ON_RECEIPT, SERVICES_ITEM = "9", "8", "6"


def fault(response):
    assert response.status_code == 400, response.text
    return response.json()["Fault"]["Error"][0]


def vendor(api, name="Roadrunner Carriers", **fields):
    response = api.post("vendor", json={"DisplayName": name, **fields})
    assert response.status_code == 200, response.text
    return response.json()["Vendor"]


def account_line(amount, account=SUBCONTRACTORS, **fields):
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}},
        **fields,
    }


def bill(api, vendor_id, *amounts, **fields):
    body = {"VendorRef": {"value": vendor_id}, "Line": [account_line(a) for a in amounts]}
    response = api.post("bill", json={**body, **fields})
    assert response.status_code == 200, response.text
    return response.json()["Bill"]


def pay(api, vendor_id, total, *applied, pay_type="Check", account=CHECKING):
    """A bill payment of `total`; `applied` = (TxnType, TxnId, Amount) per line."""
    holder, key = (
        ("CheckPayment", "BankAccountRef")
        if pay_type == "Check"
        else ("CreditCardPayment", "CCAccountRef")
    )
    response = api.post(
        "billpayment",
        json={
            "VendorRef": {"value": vendor_id},
            "PayType": pay_type,
            holder: {key: {"value": account}},
            "TotalAmt": total,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}
                for txn_type, txn_id, amount in applied
            ],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["BillPayment"]


def read(api, entity_type, qbo_id):
    return api.get(f"{entity_type.lower()}/{qbo_id}").json()[entity_type]


# --- seeded accounts ---------------------------------------------------------------------------


def test_a_new_company_has_the_payables_accounts(api):
    accounts = api.query("SELECT * FROM Account MAXRESULTS 100").json()["QueryResponse"]["Account"]
    by_id = {a["Id"]: (a["Name"], a["AccountType"], a.get("AccountSubType")) for a in accounts}
    assert by_id[AP] == ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable")
    assert by_id[CHECKING] == ("Checking", "Bank", "Checking")
    assert by_id[MASTERCARD] == ("Mastercard", "Credit Card", "CreditCard")
    assert by_id[SUBCONTRACTORS] == ("Subcontractors", "Cost of Goods Sold", "CostOfLaborCos")
    assert by_id[FUEL] == ("Truck Fuel", "Expense", "Auto")
    # The first nine seeded objects keep their Ids.
    assert by_id["1"][0] == "Services" and by_id["5"][0] == "Cost of Goods Sold"
    found = api.query("SELECT * FROM Account WHERE AccountType = 'Accounts Payable'").json()
    assert [a["Id"] for a in found["QueryResponse"]["Account"]] == [AP]
    assert {a["Classification"] for a in accounts if a["Id"] in (AP, MASTERCARD)} == {"Liability"}


# --- Bill: computed fields ---------------------------------------------------------------------


def test_a_bill_computes_lines_total_balance_due_date_and_ap_account(api):
    carrier = vendor(api, TermRef={"value": NET_30})
    item_line = {
        "DetailType": "ItemBasedExpenseLineDetail",
        "ItemBasedExpenseLineDetail": {
            "ItemRef": {"value": SERVICES_ITEM},
            "Qty": 2,
            "UnitPrice": 25.5,
        },
    }
    created = bill(
        api,
        carrier["Id"],
        100,
        TxnDate="2026-11-01",
        Line=[account_line(100), item_line],
        TotalAmt=5,  # QBO's own total wins
        Balance=0,  # the placeholder python-quickbooks sends
    )
    assert created["TotalAmt"] == 151.0
    assert created["Balance"] == 151.0
    assert [(line["Id"], line["LineNum"], line["Amount"]) for line in created["Line"]] == [
        ("1", 1, 100.0),
        ("2", 2, 51.0),
    ]
    assert all(line["DetailType"] != "SubTotalLineDetail" for line in created["Line"])
    assert created["DueDate"] == "2026-12-01"  # the vendor's Net 30
    assert created["SalesTermRef"] == {"value": NET_30}
    assert created["APAccountRef"] == {"value": AP, "name": "Accounts Payable (A/P)"}
    assert created["LinkedTxn"] == []
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 151.0


def test_a_bill_due_date_follows_its_own_terms_or_its_txn_date(api):
    carrier = vendor(api, TermRef={"value": NET_30})
    on_receipt = bill(
        api, carrier["Id"], 10, TxnDate="2026-11-01", SalesTermRef={"value": DUE_ON_RECEIPT}
    )
    assert on_receipt["DueDate"] == "2026-11-01"
    given = bill(api, carrier["Id"], 10, TxnDate="2026-11-01", DueDate="2026-11-20")
    assert given["DueDate"] == "2026-11-20"
    plain = bill(api, vendor(api, "No Terms Trucking")["Id"], 10, TxnDate="2026-11-05")
    assert plain["DueDate"] == "2026-11-05" and "SalesTermRef" not in plain


def test_negative_lines_are_taken_but_a_negative_total_is_not(api):
    carrier = vendor(api)
    # A settlement: linehaul less a fuel advance.
    settled = bill(api, carrier["Id"], 1200, -350)
    assert (settled["TotalAmt"], settled["Balance"]) == (850.0, 850.0)
    assert bill(api, carrier["Id"], 100, -100)["TotalAmt"] == 0.0
    error = fault(
        api.post("bill", json={"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(-5)]})
    )
    assert error["code"] == "6000"
    assert "Transaction amount must be positive" in error["Detail"]


def test_an_updated_bill_keeps_what_is_paid(api):
    carrier = vendor(api)
    created = bill(api, carrier["Id"], 100)
    pay(api, carrier["Id"], 40, ("Bill", created["Id"], 40))
    current = read(api, "Bill", created["Id"])
    response = api.post(
        "bill",
        json={**current, "Line": [account_line(100), account_line(20, FUEL)]},
    )
    assert response.status_code == 200, response.text
    updated = response.json()["Bill"]
    assert (updated["TotalAmt"], updated["Balance"]) == (120.0, 80.0)
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 80.0


# --- Bill: faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, code, element",
    [
        ({"VendorRef": None}, "2020", "VendorRef"),
        ({"VendorRef": {"value": "999"}}, "2500", ""),
        ({"Line": []}, "2020", "Line"),
        ({"Line": [{"Amount": 5, "DetailType": "AccountBasedExpenseLineDetail"}]}, "2020", "AccountRef"),
        ({"Line": [account_line(5, account="999")]}, "2500", ""),
        ({"Line": [{"DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": FUEL}}}]},
         "2020", "Amount"),
        ({"Line": [{"Amount": 5, "DetailType": "ItemBasedExpenseLineDetail",
                    "ItemBasedExpenseLineDetail": {}}]}, "2020", "ItemRef"),
        ({"Line": [{"DetailType": "ItemBasedExpenseLineDetail",
                    "ItemBasedExpenseLineDetail": {"ItemRef": {"value": SERVICES_ITEM}, "Qty": 2}}]},
         "2020", "Amount"),
        ({"Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {}}]}, "6000", None),
        ({"Line": [{"Amount": 5}]}, "2020", "DetailType"),
        ({"Line": [account_line(5, Description="x" * 4001)]}, "6000", "Description"),
        ({"DocNumber": "B" * 22}, "6000", "DocNumber"),
        ({"TxnDate": "next week"}, "6000", None),
        ({"SalesTermRef": {"value": "999"}}, "2500", ""),
        ({"APAccountRef": {"value": "999"}}, "2500", ""),
        ({"CustomerRef": {"value": "1"}}, "2010", None),
    ],
)  # fmt: skip
def test_bill_faults(api, change, code, element):
    carrier = vendor(api)
    body = {"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(5)], **change}
    body = {k: v for k, v in body.items() if v is not None}
    error = fault(api.post("bill", json=body))
    assert error["code"] == code, error
    if element is not None:
        assert error.get("element") == element, error


def test_a_bill_for_an_inactive_vendor_is_610(api):
    carrier = vendor(api)
    api.post(
        "vendor", json={"Id": carrier["Id"], "SyncToken": "0", "sparse": True, "Active": False}
    )
    body = {"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(5)]}
    assert fault(api.post("bill", json=body))["code"] == "610"


def test_bill_numbers_repeat_across_vendors_not_within_one(api, company):
    first, second = vendor(api, "Alpha Haul")["Id"], vendor(api, "Beta Haul")["Id"]
    bill(api, first, 10, DocNumber="INV-7")
    bill(api, second, 10, DocNumber="INV-7")  # another vendor's invoice number 7
    again = {"VendorRef": {"value": first}, "Line": [account_line(10)], "DocNumber": "INV-7"}
    error = fault(api.post("bill", json=again))
    assert error["code"] == "6140"
    assert "DocNumber=INV-7 is assigned to TxnType=Bill" in error["Detail"]
    allowed = api.post("bill", json=again, params={"include": "allowduplicatedocnum"})
    assert allowed.status_code == 200, allowed.text
    services.faults_set(company=company, warn_duplicate_doc_number=False)
    assert api.post("bill", json=again).status_code == 200


def test_a_bill_cannot_be_voided_but_can_be_deleted(api):
    created = bill(api, vendor(api)["Id"], 10)
    stub = {"Id": created["Id"], "SyncToken": created["SyncToken"]}
    error = fault(api.post("bill", json=stub, params={"operation": "void"}))
    assert (error["code"], error["Message"]) == ("500", "Unsupported Operation")
    deleted = api.post("bill", json=stub, params={"operation": "delete"})
    assert deleted.json()["Bill"] == {"domain": "QBO", "status": "Deleted", "Id": created["Id"]}


# --- BillPayment -------------------------------------------------------------------------------


def test_paying_a_bill_lowers_its_balance_and_the_vendors(api):
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 150)
    payment = pay(api, carrier["Id"], 60, ("Bill", owed["Id"], 60))
    assert payment["CheckPayment"] == {
        "BankAccountRef": {"value": CHECKING},
        "PrintStatus": "NotSet",
    }
    assert payment["APAccountRef"]["value"] == AP
    assert payment["TxnDate"]
    after = read(api, "Bill", owed["Id"])
    assert after["Balance"] == 90.0
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "BillPayment"}]
    assert after["SyncToken"] == "1"
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 90.0
    # Update the payment: the balance is computed again.
    raised = api.post(
        "billpayment",
        json={
            "Id": payment["Id"],
            "SyncToken": payment["SyncToken"],
            "sparse": True,
            "TotalAmt": 150,
            "Line": [{"Amount": 150, "LinkedTxn": [{"TxnId": owed["Id"], "TxnType": "Bill"}]}],
        },
    )
    assert raised.status_code == 200, raised.text
    assert read(api, "Bill", owed["Id"])["Balance"] == 0.0
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 0.0


def test_voiding_or_deleting_a_bill_payment_restores_the_balance(qb, api):
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 150)
    payment = pay(api, carrier["Id"], 100, ("Bill", owed["Id"], 100))
    # python-quickbooks voids with ?operation=update&include=void and a sparse body.
    BillPayment.get(payment["Id"], qb=qb).void(qb=qb)
    voided = read(api, "BillPayment", payment["Id"])
    assert (voided["TotalAmt"], voided["PrivateNote"], voided["SyncToken"]) == (0.0, "Voided", "1")
    assert [line["Amount"] for line in voided["Line"]] == [0.0]
    assert read(api, "Bill", owed["Id"])["Balance"] == 150.0
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 150.0
    second = pay(api, carrier["Id"], 50, ("Bill", owed["Id"], 50))
    assert read(api, "Bill", owed["Id"])["Balance"] == 100.0
    api.post(
        "billpayment", json={"Id": second["Id"], "SyncToken": "0"}, params={"operation": "delete"}
    )
    after = read(api, "Bill", owed["Id"])
    assert after["Balance"] == 150.0
    # The voided payment still links (zero applied), the deleted one no longer does.
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "BillPayment"}]


def test_deleting_a_paid_bill_unlinks_its_payment(api, company):
    carrier = vendor(api)
    owed, other = bill(api, carrier["Id"], 150), bill(api, carrier["Id"], 20)
    payment = pay(api, carrier["Id"], 170, ("Bill", owed["Id"], 150), ("Bill", other["Id"], 20))
    api.post("bill", json={"Id": owed["Id"], "SyncToken": "1"}, params={"operation": "delete"})
    after = read(api, "BillPayment", payment["Id"])
    # The payment keeps its money (QBO shows the rest as the vendor's credit); only the line
    # applied to the deleted bill goes.
    assert after["TotalAmt"] == 170.0 and after["SyncToken"] == "1"
    assert [line["LinkedTxn"][0]["TxnId"] for line in after["Line"]] == [other["Id"]]
    assert "UnappliedAmt" not in after
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 0.0


def test_a_vendor_credit_is_applied_by_a_bill_payment(api):
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 150)
    response = api.post(
        "vendorcredit",
        json={"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(40, FUEL)]},
    )
    assert response.status_code == 200, response.text
    credit = response.json()["VendorCredit"]
    assert (credit["TotalAmt"], credit["Balance"]) == (40.0, 40.0)
    assert credit["APAccountRef"]["value"] == AP
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 110.0  # open bills less credits
    payment = pay(
        api,
        carrier["Id"],
        110,
        ("Bill", owed["Id"], 150),
        ("VendorCredit", credit["Id"], 40),
    )
    assert read(api, "Bill", owed["Id"])["Balance"] == 0.0
    used = read(api, "VendorCredit", credit["Id"])
    assert used["Balance"] == 0.0
    assert used["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "BillPayment"}]
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 0.0
    # Deleting the credit gives the bill back the part the credit paid.
    api.post("vendorcredit", json={"Id": credit["Id"], "SyncToken": used["SyncToken"]},
             params={"operation": "delete"})  # fmt: skip
    assert read(api, "Bill", owed["Id"])["Balance"] == 0.0  # the 150 line still pays it
    assert read(api, "Vendor", carrier["Id"])["Balance"] == 0.0


def test_vendor_credit_faults(api):
    carrier = vendor(api)
    assert fault(api.post("vendorcredit", json={"Line": [account_line(5)]}))["code"] == "2020"
    body = {"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(-5)]}
    assert fault(api.post("vendorcredit", json=body))["code"] == "6000"
    body = {"VendorRef": {"value": carrier["Id"]}, "Line": [account_line(5)], "Bogus": 1}
    assert fault(api.post("vendorcredit", json=body))["code"] == "2010"


def _payment_body(vendor_id, bill_id, **change):
    body = {
        "VendorRef": {"value": vendor_id},
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": {"value": CHECKING}},
        "TotalAmt": 10,
        "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": bill_id, "TxnType": "Bill"}]}],
        **change,
    }
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    "change, code, element",
    [
        ({"VendorRef": None}, "2020", "VendorRef"),
        ({"VendorRef": {"value": "999"}}, "2500", ""),
        ({"TotalAmt": None}, "2020", "TotalAmt"),
        ({"TotalAmt": -10}, "6000", None),
        ({"PayType": None}, "2020", "PayType"),
        ({"PayType": "Cash"}, "6000", None),
        ({"CheckPayment": None}, "2020", "CheckPayment.BankAccountRef"),
        ({"CheckPayment": {"BankAccountRef": {"value": MASTERCARD}}}, "6000", None),
        ({"CheckPayment": {"BankAccountRef": {"value": "999"}}}, "2500", ""),
        ({"PayType": "CreditCard"}, "2020", "CreditCardPayment.CCAccountRef"),
        ({"PayType": "CreditCard", "CreditCardPayment": {"CCAccountRef": {"value": CHECKING}}},
         "6000", None),
        ({"Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": "999", "TxnType": "Bill"}]}]}, "610", ""),
        ({"Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": "1", "TxnType": "VendorCredit"}]}]},
         "610", ""),
        ({"UnappliedAmt": 3}, "2010", None),
    ],
)  # fmt: skip
def test_bill_payment_faults(api, change, code, element):
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 10)
    error = fault(api.post("billpayment", json=_payment_body(carrier["Id"], owed["Id"], **change)))
    assert error["code"] == code, error
    if element is not None:
        assert error.get("element") == element, error
    assert read(api, "Bill", owed["Id"])["Balance"] == 10.0  # nothing was applied


def test_a_bill_payment_pays_only_its_vendors_bills(api):
    carrier, other = vendor(api, "Alpha Haul")["Id"], vendor(api, "Beta Haul")["Id"]
    theirs = bill(api, other, 10)
    error = fault(api.post("billpayment", json=_payment_body(carrier, theirs["Id"])))
    assert error["code"] == "6000" and "belongs to another vendor" in error["Detail"]
    assert read(api, "Bill", theirs["Id"])["Balance"] == 10.0


def test_python_quickbooks_objects_round_trip(qb, api):
    """The placeholders python-quickbooks sends (Balance 0, ExchangeRate 0, "" dates) are
    ignored; a vendor's full update keeps the balance QBO keeps."""
    carrier = Vendor()
    carrier.DisplayName = "Driver Dan"
    carrier = carrier.save(qb=qb)
    assert carrier.Balance == 0
    expense = Bill()
    expense.VendorRef = carrier.to_ref()
    line = AccountBasedExpenseLine()
    line.Amount = 640
    line.Description = "Settlement week 48"
    line.AccountBasedExpenseLineDetail = AccountBasedExpenseLineDetail()
    line.AccountBasedExpenseLineDetail.AccountRef = Ref()
    line.AccountBasedExpenseLineDetail.AccountRef.value = SUBCONTRACTORS
    expense.Line.append(line)
    expense = expense.save(qb=qb)
    assert (expense.TotalAmt, expense.Balance) == (640, 640)
    payment = BillPayment()
    payment.VendorRef = carrier.to_ref()
    payment.PayType = "CreditCard"
    payment.CreditCardPayment = BillPaymentCreditCard()
    payment.CreditCardPayment.CCAccountRef = Ref()
    payment.CreditCardPayment.CCAccountRef.value = MASTERCARD
    payment.TotalAmt = 640
    paid = BillPaymentLine()
    paid.Amount = 640
    paid.LinkedTxn.append(expense.to_linked_txn())
    payment.Line.append(paid)
    payment = payment.save(qb=qb)
    assert Bill.get(expense.Id, qb=qb).Balance == 0
    owed_more = bill(api, carrier.Id, 75)
    vendor_now = Vendor.get(carrier.Id, qb=qb)
    assert vendor_now.Balance == 75
    vendor_now.CompanyName = "Dan Trucking LLC"
    vendor_now.Balance = 0  # sent back by the client: QBO keeps its own
    assert vendor_now.save(qb=qb).Balance == 75
    assert owed_more["Balance"] == 75.0


# --- Purchase ----------------------------------------------------------------------------------


def test_a_purchase_from_a_bank_or_card_account(api):
    carrier = vendor(api)
    response = api.post(
        "purchase",
        json={
            "PaymentType": "CreditCard",
            "AccountRef": {"value": MASTERCARD},
            "EntityRef": {"value": carrier["Id"], "type": "Vendor"},
            "Line": [account_line(80, FUEL), account_line(12.5, "17")],  # fuel and tolls
        },
    )
    assert response.status_code == 200, response.text
    purchase = response.json()["Purchase"]
    assert (purchase["TotalAmt"], purchase["Credit"]) == (92.5, False)
    assert [line["Id"] for line in purchase["Line"]] == ["1", "2"]
    check = api.post(
        "purchase",
        json={"PaymentType": "Check", "AccountRef": {"value": CHECKING},
              "Line": [account_line(30, FUEL)]},
    )  # fmt: skip
    assert check.status_code == 200 and "Credit" not in check.json()["Purchase"]


@pytest.mark.parametrize(
    "change, code, element",
    [
        ({"PaymentType": None}, "2020", "PaymentType"),
        ({"PaymentType": "Barter"}, "6000", None),
        ({"AccountRef": None}, "2020", "AccountRef"),
        ({"AccountRef": {"value": MASTERCARD}}, "6000", None),
        ({"AccountRef": {"value": "999"}}, "2500", ""),
        ({"EntityRef": {"value": "999", "type": "Vendor"}}, "2500", ""),
        ({"Line": None}, "2020", "Line"),
        ({"Line": [{"Amount": 5, "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {}}]}, "2020", "AccountRef"),
    ],
)  # fmt: skip
def test_purchase_faults(api, change, code, element):
    body = {
        "PaymentType": "Check",
        "AccountRef": {"value": CHECKING},
        "Line": [account_line(5, FUEL)],
        **change,
    }
    error = fault(api.post("purchase", json={k: v for k, v in body.items() if v is not None}))
    assert error["code"] == code, error
    if element is not None:
        assert error.get("element") == element, error


# --- query, batch, cdc, webhooks ---------------------------------------------------------------


def test_bills_are_queried_by_vendor_and_number_through_the_index(api):
    first, second = vendor(api, "Alpha Haul")["Id"], vendor(api, "Beta Haul")["Id"]
    mine = [bill(api, first, 10, DocNumber="A-1")["Id"], bill(api, first, 20)["Id"]]
    theirs = bill(api, second, 30, DocNumber="A-1")["Id"]
    pay(api, first, 10, ("Bill", mine[0], 10))

    def ids(sql):
        rows = api.query(sql).json()["QueryResponse"]
        return [row["Id"] for row in next(iter(rows.values()), [])] if rows else []

    assert ids(f"SELECT * FROM Bill WHERE VendorRef = '{first}'") == mine
    assert ids(f"SELECT * FROM Bill WHERE VendorRef IN ('{first}', '{second}')") == [*mine, theirs]
    assert ids(f"SELECT * FROM Bill WHERE VendorRef = '{second}' AND DocNumber = 'A-1'") == [theirs]
    assert ids("SELECT * FROM Bill WHERE DocNumber = 'A-1'") == [mine[0], theirs]
    assert ids(f"SELECT * FROM BillPayment WHERE VendorRef = '{first}'") != []
    assert ids(f"SELECT * FROM BillPayment WHERE VendorRef = '{second}'") == []
    # A bill has no CustomerRef: the party column (which holds its vendor) is not used for it.
    assert ids(f"SELECT * FROM Bill WHERE CustomerRef = '{first}'") == []
    total = api.query(f"SELECT COUNT(*) FROM Bill WHERE VendorRef = '{first}'").json()
    assert total["QueryResponse"]["totalCount"] == 2
    stored = Entity.objects.get(entity_type="Bill", qbo_id=int(theirs))
    assert stored.customer_ref == second  # the indexed column


def test_bills_are_created_in_a_batch_item_by_item(api):
    carrier = vendor(api)["Id"]
    items = [
        {"bId": "1", "operation": "create",
         "Bill": {"VendorRef": {"value": carrier}, "Line": [account_line(10)], "DocNumber": "S-1"}},
        {"bId": "2", "operation": "create", "Bill": {"Line": [account_line(10)]}},
        {"bId": "3", "operation": "create",
         "Bill": {"VendorRef": {"value": carrier}, "Line": [account_line(20)], "DocNumber": "S-1"}},
        {"bId": "4", "operation": "create", "optionsData": "allowduplicatedocnum",
         "Bill": {"VendorRef": {"value": carrier}, "Line": [account_line(30)], "DocNumber": "S-1"}},
    ]  # fmt: skip
    answers = api.post("batch", json={"BatchItemRequest": items}).json()["BatchItemResponse"]
    assert answers[0]["Bill"]["TotalAmt"] == 10.0
    assert answers[1]["Fault"]["Error"][0]["code"] == "2020"
    assert answers[2]["Fault"]["Error"][0]["code"] == "6140"
    assert answers[3]["Bill"]["DocNumber"] == "S-1"
    assert read(api, "Vendor", carrier)["Balance"] == 40.0


def test_cdc_lists_vendor_bill_and_bill_payment_changes(api):
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 50)
    payment = pay(api, carrier["Id"], 50, ("Bill", owed["Id"], 50))
    body = api.get(
        "cdc",
        params={"entities": "Vendor,Bill,BillPayment", "changedSince": since.isoformat()},
    ).json()
    vendors, bills, payments = body["CDCResponse"][0]["QueryResponse"]
    assert [v["Id"] for v in vendors["Vendor"]] == [carrier["Id"]]
    assert bills["Bill"][0]["Balance"] == 0.0  # the bill as the payment left it
    assert [p["Id"] for p in payments["BillPayment"]] == [payment["Id"]]


@pytest.fixture
def receiver(app):
    listening = Receiver()
    app.webhook_url = listening.url
    app.save()
    yield listening
    listening.server.shutdown()


def _event_types(receiver, count):
    return [event["type"] for _, body in receiver.wait(count) for event in json.loads(body)]


def test_a_bill_payment_create_sends_a_webhook(tokens, api, receiver, company):
    carrier = vendor(api)
    owed = bill(api, carrier["Id"], 50)
    payment = pay(api, carrier["Id"], 50, ("Bill", owed["Id"], 50))
    types = _event_types(receiver, 3)
    assert types == [
        "qbo.vendor.created.v1",
        "qbo.bill.created.v1",
        "qbo.billpayment.created.v1",
    ]
    last = json.loads(receiver.requests[2][1])[0]
    assert (last["intuitentityid"], last["intuitaccountid"]) == (payment["Id"], company.realm_id)
    assert WebhookDelivery.objects.filter(company=company).count() == 3


# --- the sandbox UI: a QuickBooks user pays, voids and deletes ---------------------------------


@pytest.fixture
def ui_bill(company):
    ctx = Ctx(company)
    carrier = entity_create(ctx, "Vendor", {"DisplayName": "UI Carrier"})
    return entity_create(
        ctx,
        "Bill",
        {"VendorRef": {"value": str(carrier.qbo_id)}, "Line": [account_line(150)]},
    )


def ui_url(company, *parts):
    return "/qbo-sandbox/company/" + "/".join([company.realm_id, *map(str, parts)])


def test_the_bill_page_offers_to_pay_and_delete(client, company, ui_bill, signed_in):
    page = client.get(ui_url(company, "Bill", ui_bill.qbo_id) + "/").content.decode()
    assert 'id="pay-bill"' in page and "Delete bill" in page and "Void bill" not in page
    assert 'value="150.0"' in page  # the amount defaults to the balance
    assert f'<option value="{CHECKING}" data-account-type="Bank">Checking (Bank)' in page
    assert f'<option value="{MASTERCARD}" data-account-type="Credit Card">Mastercard' in page


def test_paying_a_bill_in_the_ui_creates_a_bill_payment_and_a_webhook(
    client, company, ui_bill, signed_in, tokens, receiver
):
    pay_url = ui_url(company, "bill", ui_bill.qbo_id, "pay")
    response = client.post(pay_url, {"amount": "100.00", "pay_type": "Check", "account": CHECKING})
    assert response.status_code == 302
    ui_bill.refresh_from_db()
    assert ui_bill.data["Balance"] == 50.0
    payment = Entity.objects.get(entity_type="BillPayment")
    assert payment.data["VendorRef"] == ui_bill.data["VendorRef"]
    assert payment.data["CheckPayment"]["BankAccountRef"] == {"value": CHECKING}
    assert payment.data["Line"][0]["LinkedTxn"] == [
        {"TxnId": str(ui_bill.qbo_id), "TxnType": "Bill"}
    ]
    assert _event_types(receiver, 1) == ["qbo.billpayment.created.v1"]
    # By card, from the card account.
    client.post(pay_url, {"amount": "50", "pay_type": "CreditCard", "account": MASTERCARD})
    ui_bill.refresh_from_db()
    assert ui_bill.data["Balance"] == 0.0


def test_a_refused_ui_payment_shows_the_fault_and_changes_nothing(
    client, company, ui_bill, signed_in
):
    pay_url = ui_url(company, "bill", ui_bill.qbo_id, "pay")
    wrong = {"amount": "10", "pay_type": "CreditCard", "account": CHECKING}
    page = client.post(pay_url, wrong, follow=True).content.decode()
    assert "(6000)" in page and "must name a Credit Card account" in page
    page = client.post(pay_url, {"amount": "0", "pay_type": "Check", "account": CHECKING},
                       follow=True).content.decode()  # fmt: skip
    assert "Enter an amount greater than zero." in page
    assert not Entity.objects.filter(entity_type="BillPayment").exists()
    ui_bill.refresh_from_db()
    assert ui_bill.data["Balance"] == 150.0


def test_void_and_delete_a_bill_payment_and_delete_the_bill_in_the_ui(
    client, company, ui_bill, signed_in
):
    pay_url = ui_url(company, "bill", ui_bill.qbo_id, "pay")
    client.post(pay_url, {"amount": "150", "pay_type": "Check", "account": CHECKING})
    payment = Entity.objects.get(entity_type="BillPayment")
    page = client.get(ui_url(company, "BillPayment", payment.qbo_id) + "/").content.decode()
    assert "Void bill payment" in page and "Delete bill payment" in page
    client.post(ui_url(company, "billpayment", payment.qbo_id, "void"))
    payment.refresh_from_db()
    ui_bill.refresh_from_db()
    assert (payment.data["TotalAmt"], payment.data["PrivateNote"]) == (0.0, "Voided")
    assert ui_bill.data["Balance"] == 150.0
    response = client.post(ui_url(company, "billpayment", payment.qbo_id, "delete"))
    assert response.url == f"/qbo-sandbox/company/{company.realm_id}/"
    payment.refresh_from_db()
    assert payment.deleted is True
    client.post(ui_url(company, "bill", ui_bill.qbo_id, "delete"))
    ui_bill.refresh_from_db()
    assert ui_bill.deleted is True


def test_the_ui_pay_action_needs_a_signed_in_user(client, company, ui_bill, sandbox_user):
    pay_url = ui_url(company, "bill", ui_bill.qbo_id, "pay")
    response = client.post(pay_url, {"amount": "10", "pay_type": "Check", "account": CHECKING})
    assert response.status_code == 302 and "/qbo-sandbox/signin" in response.url
    assert not Entity.objects.filter(entity_type="BillPayment").exists()
    assert client.get(pay_url).status_code in (302, 405)
