import pytest
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customers(api):
    names = ["Alpha Freight", "Beta Logistics", "Gamma's Haul", "Delta Trucking", "Epsilon"]
    return [api.post("customer", json={"DisplayName": n}).json()["Customer"] for n in names]


def test_filter_with_escaped_quote_like_python_quickbooks(qb, customers):
    found = Customer.filter(DisplayName="Gamma's Haul", qb=qb)
    assert [c.DisplayName for c in found] == ["Gamma's Haul"]


def test_all_count_and_paging(qb, api, customers):
    assert Customer.count(qb=qb) == 5
    page = api.query("SELECT * FROM Customer ORDERBY Id STARTPOSITION 4 MAXRESULTS 2").json()
    # maxResults echoes the rows returned, not the MAXRESULTS asked for.
    assert page["QueryResponse"]["startPosition"] == 4
    assert page["QueryResponse"]["maxResults"] == 2
    assert [c["DisplayName"] for c in page["QueryResponse"]["Customer"]] == [
        "Delta Trucking",
        "Epsilon",
    ]
    past = api.query("SELECT * FROM Customer STARTPOSITION 50 MAXRESULTS 10").json()
    assert past["QueryResponse"] == {}


def test_like_in_order_desc_and_double_spaces(api, customers):
    body = api.query("select  *  from customer where DisplayName LIKE '%Freight%'  ").json()
    assert [c["DisplayName"] for c in body["QueryResponse"]["Customer"]] == ["Alpha Freight"]
    ids = [customers[0]["Id"], customers[2]["Id"]]
    body = api.query(
        f"SELECT * FROM Customer WHERE Id IN ('{ids[0]}', '{ids[1]}') ORDER BY DisplayName DESC"
    ).json()
    assert [c["Id"] for c in body["QueryResponse"]["Customer"]] == [ids[1], ids[0]]


def test_comparisons_on_amounts_and_dates(qb, api, customers):
    item = api.post("item", json={"Name": "Linehaul", "IncomeAccountRef": {"value": "1"}}).json()[
        "Item"
    ]
    for amount, date in ((100, "2026-01-05"), (300, "2026-02-10"), (500, "2026-03-15")):
        api.post("invoice", json={
            "CustomerRef": {"value": customers[0]["Id"]}, "TxnDate": date,
            "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}],
        })  # fmt: skip
    found = Invoice.where("TotalAmt > '150.00' AND TxnDate <= '2026-02-28'", qb=qb)
    assert [i.TotalAmt for i in found] == [300]
    body = api.query(
        f"SELECT COUNT(*) FROM Invoice WHERE CustomerRef = '{customers[0]['Id']}'"
    ).json()
    assert body["QueryResponse"] == {"totalCount": 3}


def test_select_star_sku_from_item_and_projection(qb, api):
    api.post("item", json={"Name": "Fuel", "Sku": "F-1", "IncomeAccountRef": {"value": "1"}})
    # Item.all() sends SELECT *, Sku FROM Item; the seeded items come first.
    assert [i.Name for i in Item.all(qb=qb)] == ["Services", "Hours", "Fuel"]
    body = api.query("SELECT Name, Sku FROM Item WHERE Name = 'Fuel'").json()["QueryResponse"][
        "Item"
    ][0]
    assert (body["Name"], body["Sku"], body["sparse"]) == ("Fuel", "F-1", True)


def test_maxresults_is_capped_at_1000_and_bad_sql_is_4000(api, customers):
    assert api.query("SELECT * FROM Customer MAXRESULTS 5000").status_code == 200
    response = api.query("SELECT * FROM Customer WHERE DisplayName = 'a' OR Id = '1'")
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == "4000"


def test_metadata_lastupdatedtime_filter(api, customers):
    body = api.query(
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2020-01-01T00:00:00-08:00'"
    ).json()
    assert len(body["QueryResponse"]["Customer"]) == 5


def test_email_and_case_insensitive_field_names(api):
    api.post(
        "customer",
        json={"DisplayName": "Mailer", "PrimaryEmailAddr": {"Address": "ap@mail.example"}},
    )
    body = api.query("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'ap@mail.example'").json()
    assert [c["DisplayName"] for c in body["QueryResponse"]["Customer"]] == ["Mailer"]
    body = api.query(
        "select * from Customer where displayname = 'MAILER' orderby metadata.lastupdatedtime desc"
    ).json()
    assert len(body["QueryResponse"]["Customer"]) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM Customer WHERE DisplayName != 'Epsilon'",
        "SELECT * FROM Customer WHERE Active <> true",
        "SELECT * FROM Customer STARTPOSITION 1.5",
        "SELECT * FROM Customer MAXRESULTS 2.0",
    ],
)
def test_what_qbo_has_no_syntax_for_is_a_4000_not_an_answer(api, customers, sql):
    # QBO has no "not equal" and pages by whole numbers; an emulator that answers these would
    # let the TMS ship a query real QuickBooks refuses.
    response = api.query(sql)
    assert response.status_code == 400
    error = response.json()["Fault"]["Error"][0]
    assert error["code"] == "4000"
    assert "QueryParserError" in error["Detail"]
