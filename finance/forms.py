"""Finance → QuickBooks forms: sync options and the custom description mapping."""

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from finance.descriptions import validate_mapping
from finance.models import DESCRIPTION_FIELDS, Company, FinanceSettings, Invoice, LoadDocument

OPTION_FIELDS = [
    "sync_customers",
    "sync_invoices",
    "sync_payments",
    "sync_credit_memos",
    "sync_vendors",
    "sync_bills",
    "push_on_change",
    "pull_payments",
    "pull_bill_payments",
    "auto_create_customers",
    "invoice_sync_trigger",
    "schedule_minutes",
    "payment_pull_days",
    "income_account_ref",
    "vendor_name_clash",
    "vendor_name_suffix",
    "attach_document_kinds",
    "attachments_on_send",
]
DESCRIPTION_FORM_FIELDS = [
    "description_fields",
    "description_separator",
    "description_prefix",
    "description_template",
]


class SyncOptionsForm(forms.ModelForm):
    class Meta:
        model = FinanceSettings
        fields = OPTION_FIELDS
        labels = {
            "sync_customers": "Customers",
            "sync_invoices": "Invoices",
            "sync_payments": "Payments",
            "sync_credit_memos": "Credit memos",
            "sync_vendors": "Vendors (carriers, drivers)",
            "sync_bills": "Bills and driver settlements",
            "pull_bill_payments": "Pull bill payments made in QuickBooks",
            "vendor_name_clash": "A vendor named like a QuickBooks customer",
            "vendor_name_suffix": "Suffix for such a vendor's name",
            "push_on_change": "Push each change right away",
            "pull_payments": "Pull payments applied in QuickBooks",
            "auto_create_customers": "Create customers in QuickBooks with their first invoice",
            "invoice_sync_trigger": "Send invoices",
            "schedule_minutes": "Sync schedule (minutes)",
            "payment_pull_days": "Look back for QuickBooks changes (days)",
            "income_account_ref": "Income account for new items (QuickBooks account Id)",
        }

    # Both start at 1: one message for 0 and for −5 (the model's "positive" would say ≥ 0).
    schedule_minutes = forms.IntegerField(min_value=1, label="Sync schedule (minutes)")
    vendor_name_suffix = forms.CharField(
        max_length=20, strip=False, label="Suffix for such a vendor's name"
    )
    payment_pull_days = forms.IntegerField(
        min_value=1, label="Look back for QuickBooks changes (days)"
    )
    attach_document_kinds = forms.MultipleChoiceField(
        choices=LoadDocument.Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Load documents attached to QuickBooks invoices",
        help_text="Applies to attachments made from now on; files already attached stay.",
    )
    attachments_on_send = forms.BooleanField(
        required=False, label="Include the attachments when QuickBooks emails the invoice"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "ModelForm.clean returns cleaned_data"
        for name in ("schedule_minutes", "payment_pull_days", "income_account_ref"):
            raw = str(self.data.get(self.add_prefix(name), "")).strip()
            if raw and not raw.isascii():  # int() reads "٥" as 5; nobody means that
                self.add_error(name, "Use the digits 0–9.")
        return data

    def clean_vendor_name_suffix(self) -> str:
        suffix = self.cleaned_data["vendor_name_suffix"]
        if not suffix.strip():
            raise ValidationError("The suffix must contain something besides spaces.")
        return suffix

    def clean_payment_pull_days(self) -> int | None:
        days = self.cleaned_data["payment_pull_days"]
        if days is not None and days > 30:
            raise ValidationError("QuickBooks keeps changes for 30 days: choose 30 or fewer.")
        return days

    def clean_schedule_minutes(self) -> int | None:
        minutes = self.cleaned_data["schedule_minutes"]
        if minutes is not None and minutes > 1440:
            raise ValidationError("Sync at least once a day (1440 minutes or fewer).")
        return minutes

    def clean_income_account_ref(self) -> str:
        ref = self.cleaned_data["income_account_ref"].strip()
        if ref and not (ref.isascii() and ref.isdigit()):
            raise ValidationError("A QuickBooks account Id is a whole number, like 79.")
        if ref and ref != self.instance.income_account_ref:
            # Checked in QuickBooks (through sync/, by dotted path: finance never imports it),
            # here in the form, outside any transaction; only when it changes.
            verifier = import_string(settings.QB_ACCOUNT_VERIFIER)
            exists, message = verifier(company=self.instance.company, qb_id=ref)
            if not exists:
                raise ValidationError(message)
        return ref


class DescriptionMappingForm(forms.ModelForm):
    # The order of the ticked boxes in the page is the order of the fields in the text.
    description_fields = forms.MultipleChoiceField(
        choices=list(DESCRIPTION_FIELDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Fields, in order",
    )
    description_separator = forms.CharField(
        max_length=10, required=False, strip=False, label="Separator"
    )
    description_prefix = forms.CharField(
        max_length=60,
        required=False,
        strip=False,
        label="Prefix per charge set",
        help_text=FinanceSettings._meta.get_field("description_prefix").help_text,
    )
    description_template = forms.CharField(
        max_length=500,
        required=False,
        strip=False,
        label="Template (optional)",
        help_text=FinanceSettings._meta.get_field("description_template").help_text,
    )

    class Meta:
        model = FinanceSettings
        fields = DESCRIPTION_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "ModelForm.clean returns cleaned_data"
        if self.errors:
            return data
        try:
            validate_mapping(
                fields=data.get("description_fields") or [],
                template=data.get("description_template", ""),
                prefix=data.get("description_prefix", ""),
            )
        except ValidationError as exc:
            field = "description_fields"
            text = " ".join(exc.messages)
            if "template" in text:
                field = "description_template"
            elif "prefix" in text:
                field = "description_prefix"
            self.add_error(field, exc)
        return data


def sample_invoices(company: Company, limit: int = 12) -> list[tuple[int, str]]:
    """Invoices to preview on: combined ones first (several loads), then the newest."""
    from django.db.models import Count

    qs = (
        Invoice.objects.filter(company=company)
        .select_related("customer")
        .annotate(n_sets=Count("charge_sets", distinct=True), n_lines=Count("charge_sets__lines"))
    )
    combined = list(qs.filter(n_sets__gt=1).order_by("-n_sets", "-id")[:3])
    recent = list(qs.exclude(pk__in=[i.pk for i in combined]).order_by("-id")[: limit - 3])
    choices = []
    for inv in combined + recent:
        kind = f"combined, {inv.n_sets} loads" if inv.n_sets > 1 else f"{inv.n_lines} lines"
        choices.append((inv.pk, f"{inv.doc_number} · {inv.customer.display_name} ({kind})"))
    return choices
