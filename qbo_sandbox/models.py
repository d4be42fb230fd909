"""Storage of the QBO emulator: companies, users, apps, OAuth grants, one generic entity store.

Every QBO object of every type lives in `Entity` as a JSON document; a few denormalized,
indexed columns (name_key, doc_number, txn_date, customer_ref) keep query, cdc and the
uniqueness rules fast at 100k objects per company.
"""

from django.db import models


class SandboxCompany(models.Model):
    THROTTLE_FORMAT_CHOICES = [("xml", "XML IntuitResponse"), ("json", "JSON gateway envelope")]
    ERROR_STYLE_CHOICES = [
        ("random", "random: gateway 500 or SystemFault 10000"),
        ("gateway", "gateway 500 lowercase envelope"),
        ("systemfault", "SystemFault 10000"),
    ]
    TIMEOUT_MODE_CHOICES = [("504", "answer 504 gateway timeout"), ("sleep", "sleep, then answer")]

    realm_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    warn_duplicate_doc_number = models.BooleanField(default=True)
    # One id sequence per company, shared by all entity types (ids are unique per company).
    next_id = models.BigIntegerField(default=1)

    # Rate limits (Intuit: 500/min, 10/s, 40 batch/min). None = the QBO_SANDBOX_THROTTLE_ENABLED setting.
    throttle_enabled = models.BooleanField(null=True, blank=True, default=None)
    per_minute = models.PositiveIntegerField(default=500)
    per_second = models.PositiveIntegerField(default=10)
    batch_per_minute = models.PositiveIntegerField(default=40)
    throttle_format = models.CharField(max_length=8, choices=THROTTLE_FORMAT_CHOICES, default="xml")

    # Fault injection.
    latency_ms = models.PositiveIntegerField(default=0)
    error_rate = models.FloatField(default=0.0)
    error_style = models.CharField(max_length=16, choices=ERROR_STYLE_CHOICES, default="random")
    throttle_burst = models.PositiveIntegerField(default=0)
    commit_then_timeout_rate = models.FloatField(default=0.0)
    timeout_mode = models.CharField(max_length=8, choices=TIMEOUT_MODE_CHOICES, default="504")
    timeout_sleep_seconds = models.FloatField(default=35.0)
    ignore_requestid = models.BooleanField(default=False)
    # Access tokens issued before this instant are treated as expired (fault "expire tokens").
    tokens_expired_before = models.DateTimeField(null=True, blank=True)
    # When > 0, access tokens expire this many seconds after issue instead of 3600.
    expire_tokens_every_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "sandbox companies"

    def __str__(self):
        return f"{self.name} ({self.realm_id})"


class SandboxUser(models.Model):
    """A QuickBooks user of the emulator: signs in before the consent page and the UI, as
    Intuit asks its users to. Not a Django auth user: signing into the TMS is not signing into
    QuickBooks, and the emulator stays removable.

    Access: the companies listed in `companies`, or every company (those created later too)
    when `all_companies` is set, which is what a user created without a company list gets.
    """

    email = models.EmailField(unique=True)  # stored lowercased (services.user_ensure)
    name = models.CharField(max_length=200, blank=True, default="")
    password = models.CharField(max_length=128)  # a make_password hash, never the password
    all_companies = models.BooleanField(default=False)
    companies = models.ManyToManyField(SandboxCompany, blank=True, related_name="users")
    created = models.DateTimeField(auto_now_add=True)
    last_signin = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.email

    @property
    def label(self):
        return self.name or self.email


class SandboxApp(models.Model):
    FORMAT_CHOICES = [("cloudevents", "CloudEvents"), ("legacy", "legacy eventNotifications")]
    CONTENT_TYPE_CHOICES = [
        ("", "the format's own (CloudEvents: application/cloudevents+json)"),
        ("application/cloudevents+json", "application/cloudevents+json"),
        ("application/json", "application/json"),
    ]

    name = models.CharField(max_length=200, default="Sandbox app")
    client_id = models.CharField(max_length=80, unique=True)
    client_secret = models.CharField(max_length=80)
    redirect_uris = models.JSONField(default=list)
    verifier_token = models.CharField(max_length=80)
    webhook_url = models.CharField(max_length=500, blank=True, default="")
    webhook_format = models.CharField(max_length=16, choices=FORMAT_CHOICES, default="cloudevents")
    # Intuit sends CloudEvents as application/cloudevents+json, sometimes as application/json;
    # a receiver must take both. Empty = the format's own (legacy: application/json).
    webhook_content_type = models.CharField(
        max_length=40, choices=CONTENT_TYPE_CHOICES, blank=True, default=""
    )
    # Monthly CorePlus calls across all the app's companies; None = QBO_SANDBOX_COREPLUS_ALLOWANCE.
    coreplus_allowance = models.PositiveBigIntegerField(null=True, blank=True, default=None)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} ({self.client_id})"


class AuthCode(models.Model):
    code = models.CharField(max_length=80, unique=True)
    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    redirect_uri = models.CharField(max_length=500)
    scope = models.CharField(max_length=500, default="")
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)


class Token(models.Model):
    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    access_token = models.CharField(max_length=200, unique=True)
    refresh_token = models.CharField(max_length=200, unique=True)
    scope = models.CharField(max_length=500, default="")
    created = models.DateTimeField(auto_now_add=True)
    access_expires_at = models.DateTimeField()
    refresh_expires_at = models.DateTimeField()
    # Refresh rotation: once used, the refresh token answers with `replaced_by` for a grace window.
    rotated_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    revoked = models.BooleanField(default=False)
    # Fixed at consent and copied on every rotation: a refresh never extends it (Intuit, 2025).
    # None (rows from before it existed) = created + QBO_SANDBOX_REFRESH_HARD_EXPIRY_DAYS.
    hard_expires_at = models.DateTimeField(null=True, blank=True)


class Entity(models.Model):
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    entity_type = models.CharField(max_length=64)
    qbo_id = models.BigIntegerField()
    sync_token = models.IntegerField(default=0)
    active = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)
    data = models.JSONField(default=dict)
    created = models.DateTimeField()
    updated = models.DateTimeField()
    # Denormalized, indexed copies of common query fields.
    name_key = models.CharField(max_length=500, blank=True, default="")  # casefolded name
    doc_number = models.CharField(max_length=64, blank=True, default="")
    txn_date = models.DateField(null=True, blank=True)
    customer_ref = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "entity_type", "qbo_id"], name="qbo_sandbox_entity_uniq_id"
            )
        ]
        indexes = [
            # cdc and "ORDER BY MetaData.LastUpdatedTime"
            models.Index(fields=["company", "entity_type", "updated"], name="qbs_entity_updated"),
            # DisplayName namespace (Customer/Vendor/Employee) and Name lookups
            models.Index(fields=["company", "name_key"], name="qbs_entity_name"),
            models.Index(fields=["company", "entity_type", "doc_number"], name="qbs_entity_doc"),
            models.Index(fields=["company", "entity_type", "txn_date"], name="qbs_entity_txndate"),
            models.Index(fields=["company", "customer_ref"], name="qbs_entity_customer"),
        ]

    def __str__(self):
        return f"{self.entity_type} {self.qbo_id}"

    @property
    def label(self):
        data = self.data or {}
        return data.get("DisplayName") or data.get("Name") or data.get("DocNumber") or ""


class RequestLog(models.Model):
    """First response to a requestid, replayed for later calls with the same id (realm-wide)."""

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    requestid = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "requestid"], name="qbs_requestlog_uniq")
        ]


class ThrottleBucket(models.Model):
    """Requests counted per company and epoch second; a minute is the sum of 60 buckets."""

    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    second = models.BigIntegerField()
    requests = models.PositiveIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "second"], name="qbs_throttle_uniq")
        ]


class WebhookDelivery(models.Model):
    """One request to an app's webhook URL: up to 100 events, of one or several companies."""

    STATUS_CHOICES = [("pending", "pending"), ("delivered", "delivered"), ("failed", "failed")]

    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE)
    # The company when every event is of one company; None for a delivery of several.
    company = models.ForeignKey(SandboxCompany, null=True, blank=True, on_delete=models.CASCADE)
    body = models.TextField()  # fixed at creation: a redelivery keeps the event ids
    content_type = models.CharField(max_length=60, default="application/json; charset=utf-8")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    in_flight_until = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # the delivery loop (qbo_sandbox.webhooks.deliver_due)
            models.Index(fields=["status", "next_attempt_at"], name="qbs_webhook_due"),
        ]


class WebhookEvent(models.Model):
    """One change to announce to one app, fixed when the change commits (its CloudEvent id too);
    the delivery loop packs an app's pending events, of any of its companies, into deliveries."""

    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    webhook_format = models.CharField(max_length=16, default="cloudevents")
    # A CloudEvent, or a legacy `entities` element (the realm comes from `company`).
    payload = models.TextField()
    created = models.DateTimeField()
    due_at = models.DateTimeField()  # created + the coalescing window
    delivery = models.ForeignKey(
        WebhookDelivery, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )

    class Meta:
        indexes = [
            # the packer: unpacked events, oldest first (qbo_sandbox.webhooks.pack_due)
            models.Index(fields=["delivery", "due_at"], name="qbs_webhook_event_due"),
        ]


class UsageCounter(models.Model):
    """API calls one app made to one company in one UTC month, as Intuit's App Partner Program
    meters them: Core (data in: writes) and CorePlus (data out: reads, queries, CDC)."""

    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE)
    company = models.ForeignKey(SandboxCompany, on_delete=models.CASCADE)
    month = models.DateField()  # the first day of the UTC month
    core = models.PositiveBigIntegerField(default=0)
    coreplus = models.PositiveBigIntegerField(default=0)
    # CorePlus by kind (they add up to `coreplus`): what a benchmark wants to tell apart.
    coreplus_read = models.PositiveBigIntegerField(default=0)
    coreplus_query = models.PositiveBigIntegerField(default=0)
    coreplus_cdc = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            # app and month first: the allowance sums an app's month over all its companies
            models.UniqueConstraint(fields=["app", "month", "company"], name="qbs_usage_uniq")
        ]


class SigningKey(models.Model):
    """RSA key for id_tokens, generated at first use."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    created = models.DateTimeField(auto_now_add=True)


class AttachmentFile(models.Model):
    """The bytes of an uploaded Attachable. Intuit keeps them in its file store and hands out a
    signed, short-lived TempDownloadUri; here the link carries an unguessable token."""

    entity = models.OneToOneField(Entity, on_delete=models.CASCADE, related_name="file")
    content = models.BinaryField()
    token = models.CharField(max_length=64, unique=True)

    def __str__(self):
        return f"file of {self.entity}"
