"""Admin for support: every changelist loads, and the QuickBooks ID area is safe."""

import pytest
from django.urls import reverse

from finance.models import ManualAction
from finance.syncstate import SyncStatus
from tests.finance.factories import InvoiceFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "company",
    "customer",
    "chargecode",
    "load",
    "invoice",
    "chargeset",
    "payment",
    "creditmemo",
    "financesettings",
    "manualaction",
]
KNOWN_IDS = {"42", "77", "500"}


def fake_verifier(*, record, qb_id):
    # Stands in for sync's check against QuickBooks: only KNOWN_IDS exist there.
    if qb_id in KNOWN_IDS:
        return True, f"Invoice {qb_id} found"
    return False, f"QuickBooks has no invoice with ID {qb_id}."


@pytest.fixture(autouse=True)
def verifier(settings):
    settings.QB_ID_VERIFIER = "tests.finance.test_admin.fake_verifier"


@pytest.fixture
def synced_invoice(company):
    invoice = InvoiceFactory(doc_number="INV-1003")
    invoice.qb_id, invoice.qb_sync_token = "130", "3"
    invoice.sync_status, invoice.synced_version = SyncStatus.SYNCED, invoice.version
    invoice.save()
    return invoice


def _url(invoice):
    return reverse("admin:finance_invoice_qb_id", args=[invoice.pk])


def _post(client, invoice, **data):
    return client.post(_url(invoice), {"confirm": "on", "note": "", **data})


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_loads_with_search(client, superuser, synced_invoice, model):
    client.force_login(superuser)

    response = client.get(reverse(f"admin:finance_{model}_changelist"), {"q": "INV-1003"})

    assert response.status_code == 200


def test_invoice_change_page_links_to_the_quickbooks_id_area(client, support_user, synced_invoice):
    client.force_login(support_user)

    response = client.get(reverse("admin:finance_invoice_change", args=[synced_invoice.pk]))

    assert response.status_code == 200
    assert _url(synced_invoice) in response.content.decode()


def test_the_engines_own_flags_are_not_editable_in_admin(client, superuser, synced_invoice):
    # create_uncertain decides whether the engine looks before it creates; the drift fields
    # hold what QuickBooks changed and what a person agreed to overwrite. None is for a form.
    client.force_login(superuser)

    page = client.get(reverse("admin:finance_invoice_change", args=[synced_invoice.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    for name in ("create_uncertain", "qb_drift", "qb_overwrite_token", "qb_sync_token"):
        assert f'name="{name}"' not in html


def test_the_area_shows_the_warning_and_current_id(client, support_user, synced_invoice):
    client.force_login(support_user)

    page = client.get(_url(synced_invoice)).content.decode()

    assert "Consult support before you do it." in page
    assert "130" in page and "I understand and have consulted support" in page


def test_remove_sends_the_record_back_to_pending_with_audit(client, support_user, synced_invoice):
    client.force_login(support_user)

    response = _post(client, synced_invoice, action="remove", note="Deleted in QBO by mistake")

    assert response.status_code == 302
    synced_invoice.refresh_from_db()
    assert (synced_invoice.qb_id, synced_invoice.sync_status) == ("", SyncStatus.PENDING)
    action = ManualAction.objects.get(kind=ManualAction.Kind.QB_ID_REMOVE)
    assert action.user == support_user and action.before["qb_id"] == "130"


def test_override_points_at_the_new_id_with_audit(client, support_user, synced_invoice):
    client.force_login(support_user)

    response = _post(client, synced_invoice, action="override", new_qb_id="42")

    assert response.status_code == 302
    synced_invoice.refresh_from_db()
    assert (synced_invoice.qb_id, synced_invoice.sync_status) == ("42", SyncStatus.SYNCED)
    action = ManualAction.objects.get(kind=ManualAction.Kind.QB_ID_OVERRIDE)
    assert (action.before["qb_id"], action.after["qb_id"]) == ("130", "42")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "positive whole number"),
        ("-5", "positive whole number"),
        ("0", "positive whole number"),
        ("", "Enter the QuickBooks ID"),
        ("999", "QuickBooks has no invoice with ID 999"),
    ],
)
def test_bad_ids_are_refused_and_nothing_changes(
    client, support_user, synced_invoice, value, message
):
    client.force_login(support_user)

    response = _post(client, synced_invoice, action="override", new_qb_id=value)

    assert response.status_code == 200 and message in response.content.decode()
    synced_invoice.refresh_from_db()
    assert synced_invoice.qb_id == "130" and not ManualAction.objects.exists()


def test_an_id_of_another_invoice_is_refused(client, support_user, synced_invoice):
    other = InvoiceFactory(doc_number="INV-1004")
    other.qb_id = "77"
    other.save()
    client.force_login(support_user)

    response = _post(client, synced_invoice, action="override", new_qb_id="77")

    assert "QuickBooks ID 77 already belongs to Invoice INV-1004" in response.content.decode()
    synced_invoice.refresh_from_db()
    assert synced_invoice.qb_id == "130"


def test_confirmation_is_required(client, support_user, synced_invoice):
    client.force_login(support_user)

    response = client.post(_url(synced_invoice), {"action": "remove"})

    assert "Tick this box" in response.content.decode()
    synced_invoice.refresh_from_db()
    assert synced_invoice.qb_id == "130"


def test_finance_staff_get_403(client, staff_finance_user, synced_invoice):
    client.force_login(staff_finance_user)

    # Why both: the page and the action are refused, not just hidden.
    assert client.get(_url(synced_invoice)).status_code == 403
    assert _post(client, synced_invoice, action="remove").status_code == 403


def test_finance_staff_see_no_link(client, staff_finance_user, synced_invoice):
    client.force_login(staff_finance_user)

    response = client.get(reverse("admin:finance_invoice_change", args=[synced_invoice.pk]))

    assert _url(synced_invoice) not in response.content.decode()


def test_superuser_may_use_the_area(client, superuser, synced_invoice):
    client.force_login(superuser)

    response = _post(client, synced_invoice, action="override", new_qb_id="500")

    assert response.status_code == 302


def test_customer_has_its_own_quickbooks_id_area(client, support_user, synced_invoice):
    client.force_login(support_user)
    url = reverse("admin:finance_customer_qb_id", args=[synced_invoice.customer.pk])

    assert client.get(url).status_code == 200


def test_editing_a_customer_in_admin_bumps_version(client, superuser, synced_invoice):
    customer = synced_invoice.customer
    client.force_login(superuser)
    url = reverse("admin:finance_customer_change", args=[customer.pk])
    form = {
        "company": customer.company_id,
        "display_name": "Renamed Shipper",
        "billing_email": customer.billing_email,
        "country": "USA",
        "terms_days": 30,
        "is_active": "on",
    }

    response = client.post(url, form)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.version == 2 and customer.sync_status == SyncStatus.PENDING


def test_finance_settings_admin_refuses_an_unknown_placeholder(client, superuser, fin_settings):
    client.force_login(superuser)
    url = reverse("admin:finance_financesettings_change", args=[fin_settings.pk])
    form = {
        "company": fin_settings.company_id,
        "invoice_sync_trigger": "approved",
        "schedule_minutes": 5,
        "payment_pull_days": 30,
        "description_fields": '["container", "po"]',
        "description_separator": " · ",
        "description_template": "Container {container} · Vessel {vessel}",
    }

    response = client.post(url, form)

    assert response.status_code == 200 and "{vessel}" in response.content.decode()
    fin_settings.refresh_from_db()
    assert fin_settings.description_template == ""
