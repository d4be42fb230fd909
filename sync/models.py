"""The QuickBooks boundary: connection and tokens, attempts, webhook events, pull cursor."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from finance.models import Company, SyncedRecord
from sync.crypto import EncryptedTextField


class QuickBooksConnection(models.Model):
    class Environment(models.TextChoices):
        LOCAL = "local", "Built-in sandbox emulator"
        SANDBOX = "sandbox", "Intuit sandbox"
        PRODUCTION = "production", "Intuit production"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnecting"
        DISCONNECTED = "disconnected", "Disconnected"

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, related_name="quickbooks_connection"
    )
    realm_id = models.CharField(max_length=32, blank=True, default="")
    company_name = models.CharField(max_length=200, blank=True, default="")
    environment = models.CharField(
        max_length=12, choices=Environment.choices, default=Environment.LOCAL
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DISCONNECTED)
    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(blank=True, default="")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    # Intuit's hard limit on the grant (≤ 5 years from consent): no refresh extends it.
    refresh_token_hard_expires_at = models.DateTimeField(null=True, blank=True)
    token_generation = models.PositiveIntegerField(default=0)
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_error = models.CharField(max_length=500, blank=True, default="")
    oauth_state = models.CharField(max_length=64, blank=True, default="")
    # CDC cursor: QBO time of the last change we have pulled.
    pull_cursor = models.DateTimeField(null=True, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    # A webhook asked for a change pull: the pull runs at this time, reading every change of
    # the burst in one CDC call (reads are metered).
    pull_requested_at = models.DateTimeField(null=True, blank=True)
    # Change pulls failing in a row (they back off), and why the last one failed.
    pull_failures = models.PositiveSmallIntegerField(default=0)
    last_pull_error = models.CharField(max_length=500, blank=True, default="")
    # Webhook health: the last delivery for this realm, and the oldest write of ours that no
    # delivery has followed since (Intuit echoes our writes; none for long = webhooks silent).
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    unechoed_write_at = models.DateTimeField(null=True, blank=True)
    # The last sweep that sent this company's new and changed records on its own schedule
    # (Finance settings' interval, when push on change is off).
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not a column: sync.services.connection.disconnect sets it on the connection it returns
    # (whether Intuit confirmed the revoke).
    revoke_confirmed: bool

    class Meta:
        constraints = [
            # One QuickBooks company belongs to one tenant: webhooks are routed by realm.
            models.UniqueConstraint(
                fields=["realm_id"],
                condition=~models.Q(realm_id=""),
                name="connection_unique_realm",
            )
        ]
        permissions = [
            ("manage_connection", "Can connect and disconnect QuickBooks"),
            ("resolve_problems", "Can re-sync, clear and mark paid on Problem Sync"),
        ]

    def __str__(self) -> str:
        return f"{self.company} → {self.company_name or self.realm_id or 'not connected'}"

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.CONNECTED and bool(self.realm_id)


class SyncAttempt(models.Model):
    """One call to QuickBooks for one record (a batch writes one row per record in it)."""

    class Outcome(models.TextChoices):
        OK = "ok", "Synced"
        LINKED = "linked", "Linked to existing object"
        RETRY = "retry", "Will retry"
        PROBLEM = "problem", "Problem"
        WAITING = "waiting", "Waiting (connection)"

    record_type = models.CharField(max_length=16)
    record_id = models.PositiveBigIntegerField()
    record_version = models.PositiveIntegerField(default=0)
    operation = models.CharField(max_length=16)
    request_id = models.CharField(max_length=50, blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    fault_code = models.CharField(max_length=16, blank=True, default="")
    message = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    payload = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["record_type", "record_id", "-started_at"], name="attempt_rec_idx")
        ]

    def __str__(self) -> str:
        return f"{self.record_type} {self.record_id} {self.operation} {self.outcome}"


class WebhookEvent(models.Model):
    """A change notification from Intuit, stored before any work so nothing is lost.

    Processed by due time (`next_attempt_at`), with a bounded number of attempts and a terminal
    `outcome`, so an event QuickBooks can never answer does not crowd out the others. Missed
    changes are still caught by the CDC safety sweep."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", "Applied"
        SKIPPED = "skipped", "Nothing to read (echo of our own write)"
        IGNORED = "ignored", "Not for us"
        GONE = "gone", "Object no longer in QuickBooks (handled as deleted)"
        FAILED = "failed", "Gave up after repeated failures"
        PULLED = "pulled", "Taken in by the change pull (CDC) it asked for"

    event_key = models.CharField(max_length=200, unique=True)
    realm_id = models.CharField(max_length=32)
    entity_name = models.CharField(max_length=40)
    entity_id = models.CharField(max_length=32)
    operation = models.CharField(max_length=20)
    occurred_at = models.CharField(max_length=40, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    deliveries = models.PositiveIntegerField(default=1)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # The processing pass (pull.webhook_events_process_pending): due first.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="webhook_due_idx",
                condition=models.Q(processed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity_name} {self.entity_id} {self.operation}"


class ProblemEvent(models.Model):
    """A record entering or leaving PROBLEM: feeds the trend chart and 'recently resolved'."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        RESOLVED = "resolved", "Resolved"

    # Null only for events stored before the column existed (they count for no tenant).
    company = models.ForeignKey(
        "finance.Company", null=True, on_delete=models.CASCADE, related_name="+"
    )
    record_type = models.CharField(max_length=16)
    record_id = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.CharField(max_length=48, blank=True, default="")
    how = models.CharField(max_length=20, blank=True, default="")  # synced, cleared, mark_paid…
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    # Not columns: the "Recently resolved" list sets them on the events it shows (the record,
    # by sync.selectors.recently_resolved; how to name it, by sync.views.problems).
    record: SyncedRecord
    label: str
    type_label: str
    how_label: str

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["kind", "record_type", "at"], name="problemevent_kind_idx"),
            models.Index(fields=["company", "at"], name="problemevent_company_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.record_type} {self.record_id} {self.kind}"


class BulkJob(models.Model):
    """A bulk action from Problem Sync; its progress bar polls this row."""

    company = models.ForeignKey(
        "finance.Company", null=True, on_delete=models.CASCADE, related_name="+"
    )
    action = models.CharField(max_length=20)
    record_type = models.CharField(max_length=16)
    record_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.action} {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * (self.done + self.failed) / self.total)


class ApiUsage(models.Model):
    """Our calls to QuickBooks per tenant, UTC month and purpose, as Intuit meters them: Core
    (data in: writes, free) and CorePlus (data out: reads, queries, CDC; a monthly allowance
    shared by every tenant of the app)."""

    company = models.ForeignKey("finance.Company", on_delete=models.CASCADE, related_name="+")
    month = models.DateField()  # the first day of the UTC month
    purpose = models.CharField(max_length=24)
    core = models.PositiveBigIntegerField(default=0)
    coreplus = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "month", "purpose"], name="apiusage_unique_bucket"
            )
        ]
        indexes = [models.Index(fields=["month"], name="apiusage_month_idx")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.month:%Y-%m} {self.purpose}: {self.coreplus} reads"


class ReadPause(models.Model):
    """Intuit refused our reads (the workspace's CorePlus allowance is spent): pulls wait until
    `retry_at` (a probe), pushes go on. One row for the whole deployment (one app)."""

    since = models.DateTimeField()
    retry_at = models.DateTimeField()
    until = models.DateTimeField()  # when Intuit said reads resume (next month)
    detail = models.CharField(max_length=500, blank=True, default="")

    def __str__(self) -> str:
        return f"reads paused since {self.since:%Y-%m-%d %H:%M}"


class QuickBooksDocument(models.Model):
    """Our copy of one QuickBooks document (invoice, credit memo, payment, bill) as QuickBooks
    last answered it, kept for reconciliation: filled by a query by date once, then kept current
    by change data capture (deletions included) and compared by SyncToken, so a document is
    never bought twice in one version."""

    company = models.ForeignKey("finance.Company", on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=20)  # "Invoice", "CreditMemo", "Payment", "Bill"
    qb_id = models.CharField(max_length=32)
    sync_token = models.CharField(max_length=16, blank=True, default="")
    doc_number = models.CharField(max_length=40, blank=True, default="")
    txn_date = models.DateField(null=True, blank=True)
    party_id = models.CharField(max_length=32, blank=True, default="")
    party_name = models.CharField(max_length=200, blank=True, default="")
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    voided = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)  # the object as answered
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "entity", "qb_id"], name="qbdocument_unique_object"
            )
        ]
        indexes = [
            models.Index(fields=["company", "entity", "txn_date"], name="qbdocument_date_idx")
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.qb_id} ({self.doc_number})"


class ReconciliationState(models.Model):
    """How far our copies of a company's QuickBooks documents reach: every document dated on or
    after `covered_from` is held, as of `refreshed_at`, for the realm it was read from."""

    company = models.OneToOneField(
        "finance.Company", on_delete=models.CASCADE, related_name="reconciliation_state"
    )
    realm_id = models.CharField(max_length=32, blank=True, default="")
    covered_from = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    def __str__(self) -> str:
        return f"reconciliation of {self.company_id} from {self.covered_from}"


class ReconciliationRun(models.Model):
    """A snapshot: the differences found for a period, the totals of each side, and what the
    run cost in QuickBooks reads. Nightly runs turn new differences into Problem Sync rows."""

    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", "Nightly"
        MANUAL = "manual", "On request"

    company = models.ForeignKey(
        "finance.Company", on_delete=models.CASCADE, related_name="reconciliation_runs"
    )
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    reads = models.PositiveIntegerField(default=0)
    documents = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # kind → differences
    totals = models.JSONField(default=dict, blank=True)
    differences = models.JSONField(default=list, blank=True)
    new_problems = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["company", "trigger", "-started_at"], name="reconrun_latest_idx")
        ]

    def __str__(self) -> str:
        return f"reconciliation {self.period_start}–{self.period_end} of {self.company_id}"


class ReconciliationAcknowledgement(models.Model):
    """A person saw a difference and accepted it (a document kept only in QuickBooks on
    purpose): the report lists it apart and the nightly run does not raise it again. Keyed by
    the difference (kind, type, document): a different difference on the same document shows."""

    company = models.ForeignKey(
        "finance.Company", on_delete=models.CASCADE, related_name="reconciliation_acks"
    )
    KEY_LENGTH = 120

    key = models.CharField(max_length=KEY_LENGTH)
    note = models.CharField(max_length=300, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "key"], name="reconack_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} acknowledged"
