"""Property tests (hypothesis): the one sync state machine, and the description builder."""

import json
import unicodedata
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from finance import services
from finance.descriptions import (
    MAX_LENGTH,
    TRUNCATION_MARKER,
    preview_descriptions,
    validate_mapping,
)
from finance.models import DESCRIPTION_FIELDS, ChargeCode, ChargeLine, ChargeSet, Load
from finance.syncstate import (
    CLAIMABLE,
    OWED,
    TRANSITIONS,
    InvalidTransition,
    SyncStatus,
    check_transition,
)
from tests.finance.factories import ChargeCodeFactory, CustomerFactory, InvoiceFactory, LoadFactory

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

STATES = [s.value for s in SyncStatus]
# Where an owed record may go: on (still owed), or to an end the engine gives a reason for.
OWED_EXITS = OWED | {SyncStatus.SYNCED, SyncStatus.PROBLEM, SyncStatus.SKIPPED}


# --- state machine -------------------------------------------------------------------------


@given(start=st.sampled_from(STATES), moves=st.lists(st.sampled_from(STATES), max_size=40))
def test_it_keeps_every_record_in_a_valid_state_whatever_is_tried(start, moves):
    state = start
    for target in moves:
        allowed = target in TRANSITIONS[state]
        try:
            check_transition(state, target)
        except InvalidTransition:
            assert not allowed  # refused exactly when the table says no
            continue
        assert allowed
        if state in OWED:
            assert target in OWED_EXITS  # an owed write is never silently forgotten
        state = target
    assert state in STATES


@given(state=st.sampled_from(STATES))
def test_it_can_always_get_back_to_pending(state):
    # No dead end: from any state some path of allowed moves leads to a new push.
    seen, frontier = {state}, [state]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert SyncStatus.PENDING in seen
    assert CLAIMABLE <= OWED


# --- description builder -------------------------------------------------------------------

FIELD_KEYS = list(DESCRIPTION_FIELDS)
# Any unicode but NUL and surrogates (PostgreSQL cannot store NUL in text; Python has no
# lone surrogates in valid str).
db_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
any_text = st.text(st.characters(blacklist_categories=["Cs"]))
placeholder = st.sampled_from([f"{{{k}}}" for k in FIELD_KEYS])
template = st.lists(
    st.one_of(placeholder, any_text.filter(lambda t: "{" not in t and "}" not in t)), max_size=40
).map("".join)
separator = st.one_of(
    st.sampled_from([" · ", " | ", "", " ", "{", "}", "o", ", "]), any_text.map(lambda t: t[:10])
)


@pytest.fixture
def invoice(db):
    code = ChargeCodeFactory()
    charge_sets = [
        services.ChargeSetSpec(
            load=LoadFactory(),
            lines=[services.LineSpec(charge_code=code, rate=Decimal("10"), note="n")],
        )
        for _ in range(2)
    ]
    return InvoiceFactory(charge_sets=charge_sets, customer=CustomerFactory())


def _fit(model, field, text: str) -> str:
    return text[: model._meta.get_field(field).max_length]


def _no_controls(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" for ch in text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.lists(st.sampled_from(FIELD_KEYS), unique=True),
    template=st.one_of(st.just(""), template),
    separator=separator,
    prefix=st.sampled_from(["", "Load {n} ({load}): ", "{label} — {container}: ", "[{po}] "]),
    note=db_text,
    load_text=db_text,
    name=db_text,
)
def test_it_builds_valid_lines_from_any_mapping_and_any_text(
    invoice, fields, template, separator, prefix, note, load_text, name
):
    assume("[truncated]" not in note + load_text + name + template + separator)
    ChargeLine.objects.filter(charge_set__invoice=invoice).update(
        note=_fit(ChargeLine, "note", note)
    )
    ChargeCode.objects.filter(
        pk=ChargeLine.objects.filter(charge_set__invoice=invoice).first().charge_code_id
    ).update(name=_fit(ChargeCode, "name", name) or "x")
    Load.objects.filter(charge_sets__invoice=invoice).update(
        po_number=_fit(Load, "po_number", load_text),
        pickup_location=_fit(Load, "pickup_location", load_text),
        delivery_location=_fit(Load, "delivery_location", load_text[::-1]),
    )
    ChargeSet.objects.filter(invoice=invoice).update(label=_fit(ChargeSet, "label", load_text))

    lines = preview_descriptions(
        invoice=invoice, fields=fields, separator=separator, prefix=prefix, template=template
    )

    assert len(lines) == 2
    for line in lines:
        assert 0 < len(line.text) <= MAX_LENGTH
        assert _no_controls(line.text), repr(line.text)
        assert line.truncated == line.text.endswith(TRUNCATION_MARKER)


@given(
    fields=st.lists(st.one_of(st.sampled_from(FIELD_KEYS), st.text(max_size=12))),
    template=st.one_of(st.just(""), any_text),
    prefix=st.one_of(st.just(""), any_text),
)
def test_it_accepts_known_fields_or_refuses_with_a_validation_error(fields, template, prefix):
    try:
        validate_mapping(fields=fields, template=template, prefix=prefix)
    except ValidationError as exc:
        assert exc.messages and all(exc.messages)  # a message a person can read
        return
    assert set(fields) <= set(FIELD_KEYS) and len(set(fields)) == len(fields)


# --- webhook parser --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["specversion", "id", "type", "intuitentityid", "intuitaccountid",
                         "time", "eventNotifications", "realmId", "dataChangeEvent",
                         "entities", "name", "operation", "lastUpdated", "data"])
        | st.text(max_size=8),
        children,
        max_size=6,
    ),
    max_leaves=30,
)  # fmt: skip
qb_ids = st.integers(min_value=1, max_value=10**12).map(str)
entities = st.sampled_from(["Invoice", "Payment", "Customer", "CreditMemo", "Item"])
verbs = st.sampled_from(["created", "updated", "deleted", "voided", "merged"])


def _check_event(event) -> None:
    assert len(event.key) <= 200 and event.key
    for value in (event.realm_id, event.entity_id):
        assert value == "" or (value.isascii() and value.isdigit())  # never a URL path


@given(data=json_values)
def test_the_webhook_parser_returns_safe_events_or_refuses_cleanly(data):
    from sync.services.pull import BadWebhook, parse_webhook

    body = json.dumps(data).encode()
    try:
        events = parse_webhook(body)
    except BadWebhook:
        return  # a clear 400
    for event in events:
        _check_event(event)


@given(
    events=st.lists(
        st.tuples(entities, verbs, qb_ids, qb_ids, st.one_of(st.none(), st.uuids().map(str))),
        min_size=1,
        max_size=20,
    ),
    legacy=st.booleans(),
)
def test_the_webhook_parser_reads_both_formats_and_keys_distinct_events_apart(events, legacy):
    from sync.services.pull import parse_webhook

    if legacy:
        body = {
            "eventNotifications": [
                {
                    "realmId": realm,
                    "dataChangeEvent": {
                        "entities": [
                            {"name": entity, "id": entity_id, "operation": verb[:-1].capitalize(),
                             "lastUpdated": f"2026-12-01T10:00:{n % 60:02d}Z"}
                        ]
                    },
                }
                for n, (entity, verb, entity_id, realm, _) in enumerate(events)
            ]
        }  # fmt: skip
    else:
        body = [
            {"specversion": "1.0", "id": event_id, "type": f"qbo.{entity.lower()}.{verb}.v1",
             "intuitentityid": entity_id, "intuitaccountid": realm,
             "time": f"2026-12-01T10:00:{n % 60:02d}Z"}
            for n, (entity, verb, entity_id, realm, event_id) in enumerate(events)
        ]  # fmt: skip
    raw = json.dumps(body).encode()

    parsed = parse_webhook(raw)

    assert [(e.entity, e.entity_id, e.realm_id) for e in parsed] == [
        (entity, entity_id, realm) for entity, _, entity_id, realm, _ in events
    ]
    for event in parsed:
        _check_event(event)
    assert [e.key for e in parse_webhook(raw)] == [e.key for e in parsed]  # redelivery: same
    items = body["eventNotifications"] if legacy else body
    for i, first in enumerate(parsed):
        for j, second in enumerate(parsed[:i]):
            ids = (events[i][4], events[j][4])
            if legacy or ids == (None, None):
                same = items[i] == items[j]  # no event id: the content identifies it
            else:
                same = ids[0] == ids[1]  # Intuit keeps the id across redeliveries
            assert (first.key == second.key) == same, (items[i], items[j])


# --- payment application amounts -------------------------------------------------------------

amounts = st.one_of(
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False),
    st.decimals(min_value=-10, max_value=500, places=3, allow_nan=False),
    st.sampled_from(["0", "-0.01", "0.001", "33.335", "200.00", "200.01", "1e2", "NaN"]),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(applied=amounts, paid=amounts)
def test_a_payment_application_is_exact_or_refused_and_never_inflates_the_balance(
    invoice, applied, paid
):
    from finance.models import Payment, PaymentApplication
    from finance.services import invoice_open_balance, payment_create

    before = invoice_open_balance(invoice)
    try:
        with transaction.atomic():
            payment = payment_create(
                company=invoice.company,
                customer=invoice.customer,
                amount=paid,
                payment_date=date(2026, 10, 25),
                applications=[(invoice, applied)],
            )
            application = payment.applications.get()
            after = invoice_open_balance(invoice)
            # Exactly what was asked, in cents, within the payment and the open balance.
            assert application.amount == Decimal(str(applied))
            assert Decimal("0.01") <= application.amount <= min(Decimal(str(paid)), before)
            assert after == before - application.amount and after >= 0
            raise _RollBack
    except ValidationError as exc:
        assert exc.messages and all(exc.messages)
        assert invoice_open_balance(invoice) == before
    except _RollBack:
        pass
    assert not PaymentApplication.objects.exists() and not Payment.objects.exists()


class _RollBack(Exception):
    """Undo one example's payment so the next starts from the same open balance."""
