"""Who wants alerts, where a tenant's webhook points, and what was sent (the dedupe log)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from finance.models import Company
from sync.crypto import EncryptedTextField


class AlertSubscription(models.Model):
    """One user's alerts for one tenant they are a member of (alerts.services checks that)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions"
    )
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    digest = models.BooleanField("Daily digest of new problems", default=False)
    immediate = models.BooleanField(
        "Immediate alerts (reconnect, authorization ending, read budget)", default=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="alertsubscription_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.company}"


class TenantAlertWebhook(models.Model):
    """A tenant's Slack-compatible incoming webhook. The URL is a credential (anyone holding it
    may post to the channel): encrypted at rest, shown and logged only as its host."""

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="+")
    url = EncryptedTextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.company} webhook"


class AlertSent(models.Model):
    """One alert for one tenant: a digest slot, an immediate condition's onset, or a test.

    The row is written before anything is sent, and the constraints make that insert the claim:
    one digest per slot, one open row per immediate condition (closed by `cleared_at` once the
    condition goes away, so its next onset is a new row and a new alert)."""

    class Kind(models.TextChoices):
        DIGEST = "digest", "Daily digest"
        IMMEDIATE = "immediate", "Immediate alert"
        TEST = "test", "Test alert"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # "digest:2026-12-03", "needs_reconnect", "token_expiry", "read_budget:2026-12", "test:…"
    condition = models.CharField(max_length=64)
    subject = models.CharField(max_length=200, blank=True, default="")
    sent_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)
    # A digest covers problems that began in (covers_from, covers_until].
    covers_from = models.DateTimeField(null=True, blank=True)
    covers_until = models.DateTimeField(null=True, blank=True)
    problems = models.PositiveIntegerField(default=0)
    recipients = models.PositiveIntegerField(default=0)
    webhook_result = models.CharField(max_length=300, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "condition"],
                condition=models.Q(kind="immediate", cleared_at__isnull=True),
                name="alertsent_one_open_condition",
            ),
            models.UniqueConstraint(
                fields=["company", "condition"],
                condition=models.Q(kind="digest"),
                name="alertsent_one_digest_per_slot",
            ),
        ]
        indexes = [
            # The digest's window start and the card's recent alerts (alerts.selectors).
            models.Index(fields=["company", "kind", "-sent_at"], name="alertsent_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.company} {self.kind} {self.condition}"
