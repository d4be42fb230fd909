"""`manage.py send_alerts`: support's way to run a pass now, or see what it would send."""

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from alerts.models import AlertSent
from tests.alerts.test_digest import problems

pytestmark = pytest.mark.django_db


def test_dry_run_prints_and_records_nothing(tenant_a, both, capsys):
    problems(tenant_a, 2)
    call_command("send_alerts", "--digest", "--dry-run")
    out = capsys.readouterr().out
    assert "2 new problem(s)" in out and "would send to fiona@trucking.example" in out
    assert mail.outbox == [] and not AlertSent.objects.exists()


def test_it_sends_the_due_digest_of_one_company(tenant_a, tenant_b, both):
    problems(tenant_a, 1)
    problems(tenant_b, 1)
    call_command("send_alerts", "--digest", "--company", str(tenant_b.pk))
    assert [m.subject.split(":")[0] for m in mail.outbox] == [str(tenant_b)]
    call_command("send_alerts", "--digest", "--company", str(tenant_b.pk))  # done for today
    assert len(mail.outbox) == 1


def test_it_refuses_an_unknown_company(db):
    with pytest.raises(CommandError, match="No company"):
        call_command("send_alerts", "--immediate", "--company", "999999")


def test_alerts_subscribe_opts_a_member_in_everywhere(tenant_a, tenant_b):
    from tests.alerts.conftest import member

    user = member("finance", tenant_a, tenant_b)
    call_command("alerts_subscribe", "finance")
    assert user.alert_subscriptions.filter(digest=True, immediate=True).count() == 2
