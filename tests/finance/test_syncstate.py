"""The one state machine: every write of sync_status goes through finance.syncstate."""

import ast
from pathlib import Path

import pytest

from finance.syncstate import MOVES, TRANSITIONS, InvalidTransition, SyncStatus, transition
from tests.finance.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["finance", "sync", "portpro_qb"]
ALLOWED = {ROOT / "finance" / "syncstate.py"}


def _writes_of_sync_status(tree: ast.AST):
    """Assignments `x.sync_status = …`, keyword `sync_status=` in update()/create()/model
    calls, and "sync_status" named in update_fields: every way Django writes the column."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "sync_status":
                    yield node.lineno, "assignment"
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            for keyword in node.keywords:
                if keyword.arg == "sync_status" and name not in {"filter", "exclude", "Q", "get"}:
                    yield node.lineno, f"{name}(sync_status=…)"
                if keyword.arg == "update_fields" and "sync_status" in ast.unparse(keyword.value):
                    yield node.lineno, "update_fields"


def test_nothing_writes_sync_status_around_the_state_machine():
    offenders = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if path in ALLOWED or "migrations" in path.parts:
                continue
            for line, how in _writes_of_sync_status(ast.parse(path.read_text())):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {how}")
    assert offenders == [], "write sync_status through finance.syncstate.move()/transition()"


def test_the_check_itself_finds_a_direct_write(tmp_path):
    # So the test above cannot pass by finding nothing at all.
    code = "Customer.objects.filter(pk=1).update(sync_status='synced')\nrecord.sync_status = 'x'\n"
    assert len(list(_writes_of_sync_status(ast.parse(code)))) == 2


def test_every_move_has_a_reason_and_every_state_a_way_out():
    assert all(reason.strip() for reason in MOVES.values())
    assert all(TRANSITIONS[state] for state in SyncStatus)


@pytest.mark.django_db
def test_a_move_the_table_does_not_have_is_refused_and_changes_nothing(company):
    customer = CustomerFactory()  # PENDING

    with pytest.raises(InvalidTransition):
        transition(customer, SyncStatus.CLEARED, how="test")

    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.PENDING


@pytest.mark.django_db
def test_leaving_problem_is_recorded_for_the_trend_chart(company):
    from django.utils import timezone

    from finance.syncstate import move
    from sync.models import ProblemEvent

    customer = CustomerFactory()
    move(
        type(customer).objects.filter(pk=customer.pk),
        SyncStatus.PROBLEM,
        how="test",
        problem_reason="validation",
        problem_since=timezone.now(),
    )
    customer.refresh_from_db()

    transition(customer, SyncStatus.CLEARED, how="cleared")

    kinds = list(
        ProblemEvent.objects.filter(record_id=customer.pk).values_list("kind", "reason", "how")
    )
    assert sorted(kinds) == [
        ("opened", "validation", "test"),
        ("resolved", "validation", "cleared"),
    ]
