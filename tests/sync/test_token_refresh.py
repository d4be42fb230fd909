"""Token refresh: no transaction across Intuit's answer, and a process killed right after the
answer (before the save) leaves a connection that recovers on the next refresh."""

import signal
import subprocess
import sys

import pytest

from sync.models import QuickBooksConnection
from sync.services import engine
from sync.services.client import refresh_tokens
from tests.finance.factories import CustomerFactory
from tests.sync.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

# Runs refresh_tokens in its own process and SIGKILLs it the moment Intuit has answered: the
# emulator has rotated the refresh token, our row has not been updated yet.
KILLED_AFTER_ANSWER = """
import os, signal, sys
import django
django.setup()
from sync.services import client
answered = client.TimedAuthClient.refresh
def refresh_then_die(self, *args, **kwargs):
    answered(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
client.TimedAuthClient.refresh = refresh_then_die
client.refresh_tokens(connection_id=int(sys.argv[1]), seen_generation=int(sys.argv[2]))
"""


def test_a_process_killed_between_the_answer_and_the_save_recovers_on_the_next_refresh(
    qbo, settings
):
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    before = (connection.refresh_token, connection.token_generation)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ANSWER, str(connection.pk), str(before[1])],
        env=worker_env(settings),
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL
    connection.refresh_from_db()
    assert (connection.refresh_token, connection.token_generation) == before  # nothing saved
    assert connection.status == QuickBooksConnection.Status.CONNECTED
    # The refresh token the row still holds was already rotated by the emulator; like Intuit's,
    # it keeps answering for the grace period, so the next refresh saves a working pair.
    recovered = refresh_tokens(connection_id=connection.pk, seen_generation=before[1])
    assert recovered.token_generation == before[1] + 1
    assert recovered.status == QuickBooksConnection.Status.CONNECTED
    assert recovered.refresh_token != before[0]
    customer = CustomerFactory()
    assert engine.push_record(sync_type="customer", pk=customer.pk) == "synced"


def test_a_refused_refresh_token_marks_the_connection_for_reconnecting(qbo):
    from sync.services.client import NeedsReconnect

    qbo.faults(revoke_refresh_tokens=True)
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)

    with pytest.raises(NeedsReconnect):
        refresh_tokens(connection_id=connection.pk, seen_generation=connection.token_generation)

    connection.refresh_from_db()
    assert connection.status == QuickBooksConnection.Status.NEEDS_RECONNECT


def test_a_refresh_that_lost_the_race_to_a_newer_pair_keeps_the_connection(qbo):
    # A stale generation (another process refreshed first) returns the newer pair unchanged.
    connection = QuickBooksConnection.objects.get(pk=qbo.connection.pk)
    QuickBooksConnection.objects.filter(pk=connection.pk).update(
        token_generation=connection.token_generation + 1
    )

    result = refresh_tokens(
        connection_id=connection.pk, seen_generation=connection.token_generation
    )

    assert result.token_generation == connection.token_generation + 1
    assert result.refresh_token == connection.refresh_token  # no call to Intuit was made
