"""ProblemEvent rows (the trend chart, "recently resolved") for every record that enters or
leaves PROBLEM: finance.syncstate announces each move in its transaction; this stores it."""

from sync.models import ProblemEvent


def on_problem_changed(sender, *, record_type, opened, resolved, how, user=None, **kwargs):
    user = user if getattr(user, "pk", None) else None
    ProblemEvent.objects.bulk_create(
        [
            ProblemEvent(
                record_type=record_type,
                record_id=pk,
                kind=ProblemEvent.Kind.OPENED,
                reason=reason[:48],
                how=how[:20],
                user=user,
            )
            for pk, reason in opened
        ]
        + [
            ProblemEvent(
                record_type=record_type,
                record_id=pk,
                kind=ProblemEvent.Kind.RESOLVED,
                reason=reason[:48],
                how=how[:20],
                user=user,
            )
            for pk, reason in resolved
        ]
    )
