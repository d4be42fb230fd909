"""Finance → QuickBooks: permissions, validation next to fields, all-or-nothing saves, audit."""

from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from finance.models import FinanceSettings, ManualAction
from finance.services import finance_settings_get
from tests.finance.factories import ChargeCodeFactory, InvoiceFactory

URL = reverse("finance:quickbooks")


def options(**overrides):
    data = {
        "section": "options",
        "opt-sync_customers": "on",
        "opt-sync_invoices": "on",
        "opt-sync_payments": "on",
        "opt-push_on_change": "on",
        "opt-pull_payments": "on",
        "opt-auto_create_customers": "on",
        "opt-invoice_sync_trigger": "approved",
        "opt-schedule_minutes": "5",
        "opt-payment_pull_days": "30",
        "opt-income_account_ref": "",
        "opt-sync_vendors": "on",
        "opt-sync_bills": "on",
        "opt-pull_bill_payments": "on",
        "opt-vendor_name_clash": "problem",
        "opt-vendor_name_suffix": " (Vendor)",
        "opt-attach_document_kinds": ["pod", "bol"],  # as the page shows them, ticked
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_it_sends_anonymous_users_to_login(client, db):
    assert client.get(URL).status_code == 302


def test_it_forbids_support_and_outsiders(client, support_user, outsider, company):
    for user in (support_user, outsider):
        client.force_login(user)
        assert client.get(URL).status_code == 403


def test_it_shows_finance_the_page(client, finance_user, company):
    InvoiceFactory(loads=2)
    client.force_login(finance_user)
    html = client.get(URL).content.decode()
    # The preview offers the combined invoice first.
    assert "combined, 2 loads" in html
    assert 'id="desc-fields"' in html


def test_it_saves_options_and_audits_the_change(client, finance_user, company):
    client.force_login(finance_user)
    response = client.post(
        URL, options(**{"opt-sync_credit_memos": None, "opt-schedule_minutes": "5"})
    )
    assert response.status_code == 302
    row = finance_settings_get(company=company)
    assert row.sync_credit_memos is False
    action = ManualAction.objects.get(kind="settings")
    assert action.before == {"sync_credit_memos": True}
    assert action.after == {"sync_credit_memos": False}


def test_it_refuses_a_pull_window_over_30_days_and_saves_nothing(client, finance_user, company):
    client.force_login(finance_user)
    response = client.post(
        URL, options(**{"opt-payment_pull_days": "45", "opt-sync_payments": None})
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "QuickBooks keeps changes for 30 days" in html
    # The valid toggle in the same form was not saved either.
    row = FinanceSettings.objects.get(company=company)
    assert (row.payment_pull_days, row.sync_payments) == (30, True)
    assert not ManualAction.objects.exists()


def test_it_saves_the_schedule_and_leaves_the_beat_tick_alone(client, finance_user, company):
    # The interval is the company's own (the sweep honours it); beat's tick serves every company.
    client.force_login(finance_user)
    every = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="Sweep pending and retry-due records",
        defaults={"task": "sync.tasks.sweep_due", "interval": every},
    )
    tick = every.pk
    client.post(URL, options(**{"opt-schedule_minutes": "15"}))
    assert FinanceSettings.objects.get(company=company).schedule_minutes == 15
    task = PeriodicTask.objects.get(name="Sweep pending and retry-due records")
    assert task.interval_id == tick


def test_it_saves_the_description_fields_in_the_chosen_order(client, finance_user, company):
    client.force_login(finance_user)
    client.post(
        URL,
        {
            "section": "descriptions",
            "desc-description_fields": ["po", "container", "charge_note"],
            "desc-description_separator": " | ",
            "desc-description_prefix": "",
            "desc-description_template": "",
        },
    )
    row = finance_settings_get(company=company)
    assert (row.description_fields, row.description_separator) == (
        ["po", "container", "charge_note"],
        " | ",
    )


def test_it_shows_a_template_error_next_to_the_template(client, finance_user, company):
    client.force_login(finance_user)
    response = client.post(
        URL,
        {
            "section": "descriptions",
            "desc-description_fields": ["po"],
            "desc-description_separator": " · ",
            "desc-description_template": "Box {boxnumber}",
        },
    )
    html = response.content.decode()
    assert "{boxnumber}" in html and "field-errors" in html
    assert finance_settings_get(company=company).description_template == ""


def test_it_previews_descriptions_in_the_order_given(client, finance_user, company):
    invoice = InvoiceFactory(loads=1, lines=1)
    load = invoice.charge_sets.get().load
    client.force_login(finance_user)
    html = client.post(
        reverse("finance:description_preview"),
        {
            "sample": invoice.pk,
            "desc-description_fields": ["po", "container"],
            "desc-description_separator": " · ",
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert html.index(load.po_number) < html.index(load.container_number)


def test_it_loads_the_item_mapping_even_without_quickbooks(client, finance_user, company):
    ChargeCodeFactory(code="DRAY")
    client.force_login(finance_user)
    html = client.get(reverse("sync:item_mapping"), HTTP_HX_REQUEST="true").content.decode()
    assert "DRAY" in html
    # Not connected: the page says so and still offers typing an Item Id.
    assert "Could not read items from QuickBooks" in html or 'name="qb_id"' in html


def test_it_shows_the_connection_card(client, finance_user, company):
    client.force_login(finance_user)
    response = client.get(reverse("sync:connection_card"), HTTP_HX_REQUEST="true")
    assert 'data-testid="connection-card"' in response.content.decode()


def test_it_offers_connecting_a_different_company_once_linked(client, finance_user, company):
    from sync.selectors import connection_for_company

    connection = connection_for_company(company=company)
    connection.realm_id, connection.status = "9130", "connected"
    connection.save()
    client.force_login(finance_user)
    html = client.get(reverse("sync:connection_card"), HTTP_HX_REQUEST="true").content.decode()
    # Switching companies resets QuickBooks IDs, so it is its own, confirmed button.
    assert 'name="reset_mappings" value="1"' in html
    assert "Disconnect" in html


def test_zero_and_negative_intervals_get_the_same_message(client, finance_user, company):
    client.force_login(finance_user)
    for value in ("0", "-5"):
        html = client.post(URL, options(**{"opt-schedule_minutes": value})).content.decode()
        assert "greater than or equal to 1" in html, value
        assert "greater than or equal to 0" not in html, value
    assert finance_settings_get(company=company).schedule_minutes == 5


def test_digits_other_than_0_to_9_are_refused(client, finance_user, company):
    client.force_login(finance_user)
    for field, value in (
        ("opt-schedule_minutes", "\u0665"),  # Arabic-Indic five: int() reads it as 5
        ("opt-payment_pull_days", "\u0967\u0966"),  # Devanagari ten
        ("opt-income_account_ref", "\u0667\u0669"),  # Arabic-Indic 79
    ):
        response = client.post(URL, options(**{field: value}))
        html = response.content.decode()
        assert response.status_code == 200, field
        assert "0–9" in html or "whole number" in html, field
    row = finance_settings_get(company=company)
    assert (row.schedule_minutes, row.payment_pull_days, row.income_account_ref) == (5, 30, "")
    assert not ManualAction.objects.exists()


def test_the_prefix_and_template_say_how_to_write_them(client, finance_user, company):
    client.force_login(finance_user)
    html = client.get(URL).content.decode()
    assert "{n} = charge set number" in html
    assert "Container {container} · PO {po}" in html


def test_a_changed_mapping_offers_to_resend_the_synced_invoices(client, finance_user, company):
    from sync.models import BulkJob
    from sync.services import actions
    from tests.sync.uifactories import park

    synced = [park(InvoiceFactory(lines=1), status="synced", qb_id=str(900 + n)) for n in range(3)]
    park(InvoiceFactory(lines=1, status="void"), status="synced", qb_id="950")
    client.force_login(finance_user)

    response = client.post(
        URL,
        {"section": "descriptions", "desc-description_fields": ["po", "container"],
         "desc-description_separator": " / ", "desc-description_prefix": "",
         "desc-description_template": ""},
        follow=True,
    )  # fmt: skip

    html = response.content.decode()
    assert 'data-testid="resend-offer"' in html and "Re-send the 3 synced invoices" in html
    client.post(reverse("sync:resend_descriptions"))
    job = BulkJob.objects.get()
    assert (job.action, sorted(job.record_ids)) == ("resend", sorted(i.pk for i in synced))
    actions.bulk_run(job_id=job.pk)
    for invoice in synced:
        before = invoice.version
        invoice.refresh_from_db()
        assert (invoice.sync_status, invoice.version) == ("pending", before + 1)


def test_saving_the_same_mapping_offers_nothing(client, finance_user, company):
    row = finance_settings_get(company=company)
    client.force_login(finance_user)
    response = client.post(
        URL,
        {"section": "descriptions", "desc-description_fields": row.description_fields,
         "desc-description_separator": row.description_separator,
         "desc-description_prefix": row.description_prefix,
         "desc-description_template": row.description_template},
        follow=True,
    )  # fmt: skip
    assert 'data-testid="resend-offer"' not in response.content.decode()
