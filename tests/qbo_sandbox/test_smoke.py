import pytest
from quickbooks.objects.customer import Customer


@pytest.mark.django_db(transaction=True)
def test_it_creates_and_reads_a_customer(qb):
    customer = Customer()
    customer.DisplayName = "Smoke Co"
    customer.save(qb=qb)
    again = Customer.get(customer.Id, qb=qb)
    assert again.DisplayName == "Smoke Co"
