"""Beat runs the alert passes: the migration's rows, and the tasks as thin wrappers."""

import pytest
from django.core import mail
from django_celery_beat.models import PeriodicTask

from alerts.tasks import check_immediate, send_due_digests
from sync.models import QuickBooksConnection
from tests.alerts.conftest import connected
from tests.alerts.test_digest import problems

pytestmark = pytest.mark.django_db


def test_the_migration_schedules_both_passes(db):
    tasks = dict(
        PeriodicTask.objects.filter(task__startswith="alerts.").values_list(
            "task", "interval__every"
        )
    )
    # Why: the immediate check must be quick to notice; the digest pass only needs its hour.
    assert tasks == {"alerts.tasks.check_immediate": 60, "alerts.tasks.send_due_digests": 300}


def test_the_tasks_run_the_passes(tenant_a, both):
    connected(tenant_a, status=QuickBooksConnection.Status.NEEDS_RECONNECT)
    problems(tenant_a, 1)
    assert (check_immediate(), send_due_digests()) == (1, 2)  # tenant_b's digest: nothing new
    assert len(mail.outbox) == 2
