"""ProblemEvent rows (the trend chart, "recently resolved") for every record that enters or
leaves PROBLEM: finance.syncstate announces each move in its transaction; this stores it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.models import ProblemEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def on_problem_changed(
    sender: object,
    *,
    record_type: str,
    opened: list[tuple[int, str, int]],
    resolved: list[tuple[int, str, int]],
    how: str,
    user: User | None = None,
    **kwargs: Any,
) -> None:
    user = user if getattr(user, "pk", None) else None
    moves = [(ProblemEvent.Kind.OPENED, row) for row in opened]
    moves += [(ProblemEvent.Kind.RESOLVED, row) for row in resolved]
    ProblemEvent.objects.bulk_create(
        ProblemEvent(
            company_id=company_id,
            record_type=record_type,
            record_id=pk,
            kind=kind,
            reason=reason[:48],
            how=how[:20],
            user=user,
        )
        for kind, (pk, reason, company_id) in moves
    )
