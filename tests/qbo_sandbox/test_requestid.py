import pytest
from quickbooks.objects.customer import Customer

from qbo_sandbox import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_same_requestid_replays_the_first_response_without_writing(qb, api):
    first = api.post("customer", json={"DisplayName": "Idem"}, params={"requestid": "rq-1"})
    # Even a different body: the id decides.
    second = api.post("customer", json={"DisplayName": "Other"}, params={"requestid": "rq-1"})
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Customer.count(qb=qb) == 1


def test_python_quickbooks_request_id_is_honoured(qb):
    customer = Customer()
    customer.DisplayName = "Via PQ"
    a = customer.save(qb=qb, request_id="pq-1")
    b = Customer()
    b.DisplayName = "Via PQ"
    again = b.save(qb=qb, request_id="pq-1")  # would be a 6240 if it were written again
    assert again.Id == a.Id


def test_ignore_requestid_creates_a_second_object(qb, api, company):
    services.faults_set(company=company, ignore_requestid=True)
    api.post("invoice", json={"CustomerRef": {"value": "1"}}, params={"requestid": "x"})
    api.post("customer", json={"DisplayName": "Twice 1"}, params={"requestid": "rq-2"})
    api.post("customer", json={"DisplayName": "Twice 2"}, params={"requestid": "rq-2"})
    assert Customer.count(qb=qb) == 2


def test_faults_are_not_recorded_so_a_fixed_retry_can_succeed(api):
    bad = api.post("customer", json={"DisplayName": "X", "Nope": 1}, params={"requestid": "rq-3"})
    assert bad.status_code == 400
    good = api.post("customer", json={"DisplayName": "X"}, params={"requestid": "rq-3"})
    assert good.status_code == 200


def test_concurrent_retries_with_one_requestid_write_once(qb, api):
    from concurrent.futures import ThreadPoolExecutor

    def post(_):
        return api.post("customer", json={"DisplayName": "Racer"}, params={"requestid": "race-1"})

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(post, range(6)))
    # Every caller gets the same first response; the realm lock makes the replay race-free.
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["Customer"]["Id"] for r in responses}) == 1
    assert Customer.count(qb=qb) == 1


def test_concurrent_creates_of_one_name_give_one_object_and_6240s(qb, api):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(lambda _: api.post("customer", json={"DisplayName": "Dup"}), range(6))
        )
    codes = sorted(
        r.json()["Fault"]["Error"][0]["code"] if r.status_code == 400 else "ok" for r in responses
    )
    assert codes == ["6240"] * 5 + ["ok"]
