"""The tenant's webhook: Slack-compatible JSON to a real local endpoint; a failing one breaks
neither the e-mail nor the pass, and its key is never shown or logged."""

import logging

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from alerts import services
from alerts.models import AlertSent, TenantAlertWebhook
from sync.models import QuickBooksConnection
from tests.alerts.conftest import connected
from tests.alerts.test_digest import problems

pytestmark = pytest.mark.django_db


def test_it_posts_the_digest_as_slack_json(tenant_a, both, receiver):
    services.webhook_set(company=tenant_a, user=both, url=receiver.url)
    problems(tenant_a, 2)
    services.digests_send_due()
    [body] = receiver.bodies
    # Why: Slack (and compatible receivers) need `text`; `blocks` carry the linked lines.
    assert "2 new QuickBooks sync problems" in body["text"]
    section = body["blocks"][0]["text"]
    assert section["type"] == "mrkdwn" and "reason%3Dmissing_item_mapping" in section["text"]
    assert AlertSent.objects.get(kind="digest", company=tenant_a).webhook_result == "ok (HTTP 200)"


def test_a_failing_webhook_does_not_stop_the_mail(tenant_a, both, receiver, caplog):
    services.webhook_set(company=tenant_a, user=both, url=receiver.url)
    receiver.status = 500
    connected(tenant_a, status=QuickBooksConnection.Status.NEEDS_RECONNECT)
    with caplog.at_level(logging.WARNING):
        services.immediate_check()
    assert len(mail.outbox) == 1  # the e-mail went out all the same
    hook = TenantAlertWebhook.objects.get(company=tenant_a)
    assert hook.last_error.startswith("failed: HTTP 500")
    # Why: the path is the webhook's key: neither the card's error nor the log holds it.
    assert "s3cr3tKEY" not in hook.last_error and "s3cr3tKEY" not in caplog.text


def test_an_unreachable_webhook_is_recorded_without_its_key(tenant_a, both, receiver):
    url = receiver.url
    receiver.close()  # nothing listens there any more
    services.webhook_set(company=tenant_a, user=both, url=url)
    row = services.test_alert_send(company=tenant_a, user=both)
    assert row.webhook_result.startswith("failed:") and "s3cr3tKEY" not in row.webhook_result
    assert row.recipients == 1  # the test alert's e-mail to the person asking


def test_a_disabled_webhook_gets_nothing(tenant_a, both, receiver):
    services.webhook_set(company=tenant_a, user=both, url=receiver.url, enabled=False)
    services.test_alert_send(company=tenant_a, user=both)
    assert receiver.bodies == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/services/x",  # plain http off this machine
        "ftp://hooks.example.com/x",
        "hooks.slack.com/services/x",
        "https://user:pw@hooks.example.com/x",
    ],
)
def test_it_refuses_unsafe_addresses(tenant_a, both, url):
    with pytest.raises(ValidationError):
        services.webhook_set(company=tenant_a, user=both, url=url)
    assert not TenantAlertWebhook.objects.exclude(url="").exists()


def test_plain_http_to_loopback_needs_the_setting(tenant_a, both, settings):
    settings.ALERTS_WEBHOOK_ALLOW_HTTP_LOOPBACK = False
    with pytest.raises(ValidationError):
        services.webhook_set(company=tenant_a, user=both, url="http://127.0.0.1:9/hook")
