"""Django admin for support: every finance model, plus the QuickBooks ID area.

Sync fields are read-only everywhere; a support user changes them only through the
"QuickBooks ID…" page of a synced record (finance.qb_ids), which warns, asks for confirmation
and writes an audit row. Money (charges, applications, credit lines) is shown, not edited:
it changes in the TMS, through finance services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from finance import documents, payables, services
from finance.descriptions import describe_invoice, validate_mapping
from finance.forms import DESCRIPTION_FORM_FIELDS, OPTION_FIELDS
from finance.http import staff_user
from finance.models import (
    Bill,
    BillLine,
    BillPayment,
    BillPaymentApplication,
    ChargeCode,
    ChargeLine,
    ChargeSet,
    Company,
    CreditMemo,
    CreditMemoLine,
    Customer,
    FinanceSettings,
    Invoice,
    InvoiceAttachment,
    Load,
    LoadDocument,
    ManualAction,
    Membership,
    PayCode,
    Payment,
    PaymentApplication,
    SyncedRecord,
    Vendor,
)
from finance.qb_ids import qb_id_override, qb_id_remove, record_label, user_can_change_qb_ids
from finance.services import record_delete
from finance.validators import validate_qb_id

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec
    from django.contrib.auth.models import User

SYNC_FIELDS = (
    "qb_id",
    "qb_sync_token",
    "sync_status",
    "version",
    "synced_version",
    "attempts",
    "problem_reason",
    "problem_since",
    "last_error_code",
    "last_error_message",
    "next_retry_at",
    "last_attempt_at",
    "last_synced_at",
    "lease_expires_at",
    "create_uncertain",
    "qb_drift",
    "qb_overwrite_token",
    "created_at",
    "updated_at",
)

QB_ID_WARNING = (
    "Changing a QuickBooks ID can create duplicates or orphan records in QuickBooks. "
    "Consult support before you do it."
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


# --- the QuickBooks ID area ---------------------------------------------------------------


class QuickBooksIdForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("override", "Override: point this record at an existing QuickBooks object"),
            ("remove", "Remove: forget the ID; the record is created again on the next sync"),
        ],
        widget=forms.RadioSelect,
        initial="override",
    )
    new_qb_id = forms.CharField(
        label="New QuickBooks ID",
        required=False,
        max_length=32,
        help_text="The Id QuickBooks shows for the object, a positive whole number like 142.",
    )
    confirm = forms.BooleanField(
        label="I understand and have consulted support",
        required=True,
        error_messages={"required": "Tick this box to confirm you have consulted support."},
    )
    note = forms.CharField(
        label="Note for the audit log",
        required=False,
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "Form.clean returns cleaned_data"
        if data.get("action") == "override":
            value = (data.get("new_qb_id") or "").strip()
            if not value:
                self.add_error("new_qb_id", "Enter the QuickBooks ID to point this record at.")
            else:
                try:
                    validate_qb_id(value)
                except ValidationError as exc:
                    self.add_error("new_qb_id", exc)
        return data


def _delete_selected_not_in_quickbooks(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SyncedRecord]
) -> TemplateResponse | None:
    """Django's "Delete selected", minus the records that live in QuickBooks (named)."""
    kept = list(queryset.filter(Q(create_uncertain=True) | ~Q(qb_id="")))
    if kept:
        names = ", ".join(str(r) for r in kept[:10]) + (" …" if len(kept) > 10 else "")
        modeladmin.message_user(
            request,
            f"Kept {len(kept)} that live in QuickBooks ({names}): void them or remove their "
            "QuickBooks ID first.",
            messages.WARNING,
        )
    remaining = queryset.exclude(pk__in=[r.pk for r in kept])
    if remaining.exists():
        return delete_selected(modeladmin, request, remaining)
    return None


class SyncedRecordAdmin(admin.ModelAdmin):
    """Base for the five synced models: sync fields read-only, plus the QuickBooks ID page."""

    change_form_template = "admin/finance/synced_change_form.html"
    sync_list_display = ("sync_status", "qb_id")

    def get_list_filter(self, request: HttpRequest) -> Any:
        return ("company", *super().get_list_filter(request))  # support serves every tenant

    def get_readonly_fields(
        self, request: HttpRequest, obj: SyncedRecord | None = None
    ) -> tuple[str, ...]:
        return tuple(super().get_readonly_fields(request, obj)) + SYNC_FIELDS

    def get_fieldsets(self, request: HttpRequest, obj: SyncedRecord | None = None) -> _FieldsetSpec:
        fields = [f for f in self.get_fields(request, obj) if f not in SYNC_FIELDS]
        return [
            (None, {"fields": fields}),
            ("QuickBooks sync", {"fields": SYNC_FIELDS, "classes": ["collapse"]}),
        ]

    # Edits go through the finance service of the type, with its guards (set per model).
    update_service: Callable[[Any, dict[str, Any], User], SyncedRecord] | None = None
    create_service: Callable[..., SyncedRecord] | None = None
    delete_refusal = (
        "This record is in QuickBooks (ID {qb_id}), so it cannot be deleted here: deleting it "
        "would leave QuickBooks' copy behind. {instead}"
    )

    def get_form(
        self,
        request: HttpRequest,
        obj: SyncedRecord | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Any]]:
        form_class = super().get_form(request, obj, change, **kwargs)
        check = self.check_change

        # mypy cannot take a base class known only at run time (the form ModelAdmin built).
        class ServiceCheckedForm(form_class):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                data = super().clean()
                if self.instance.pk and self.changed_data:
                    try:
                        check(self.instance, {n: data.get(n) for n in self.changed_data})
                    except ValidationError as exc:
                        self.add_error(None, exc)
                return data

        return ServiceCheckedForm

    def check_change(self, record: Any, fields: dict[str, Any]) -> None:
        """Refusals a service would raise, shown as form errors before anything is saved."""

    def save_model(
        self, request: HttpRequest, obj: SyncedRecord, form: forms.ModelForm[Any], change: bool
    ) -> None:
        if not change:
            if self.create_service is None:
                raise PermissionDenied
            fields = {n: form.cleaned_data[n] for n in form.changed_data if n != "company"}
            created = self.create_service(company=form.cleaned_data["company"], **fields)
            obj.pk, obj._state.adding = created.pk, False
            return
        if form.changed_data:
            assert self.update_service is not None, "each synced type's admin names its service"
            original = type(obj).objects.get(pk=obj.pk)
            changes = {name: getattr(obj, name) for name in form.changed_data}
            self.update_service(original, changes, staff_user(request))

    def has_delete_permission(self, request: HttpRequest, obj: SyncedRecord | None = None) -> bool:
        if obj is not None and (obj.qb_id or obj.create_uncertain):
            return False  # see delete_refusal, shown on the change page
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: SyncedRecord) -> None:
        record_delete(record=obj, user=staff_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SyncedRecord]) -> None:
        for record in queryset:
            record_delete(record=record, user=staff_user(request))

    def get_actions(
        self, request: HttpRequest
    ) -> dict[str, tuple[Callable[..., str], str, str] | None]:
        actions = super().get_actions(request)
        delete = actions.get("delete_selected")
        if delete is not None:
            actions["delete_selected"] = (
                # django-stubs types an action as returning str; it returns a response or None.
                _delete_selected_not_in_quickbooks,  # type: ignore[assignment]
                "delete_selected",
                delete[2],
            )
        return actions

    def delete_instead(self, obj: Any) -> str:
        return (
            "Make it inactive in QuickBooks, or remove its QuickBooks ID first with "
            "“QuickBooks ID…” (QuickBooks then keeps its copy)."
        )

    # The QuickBooks ID page ------------------------------------------------------------

    def _qb_id_url_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_qb_id"

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/quickbooks-id/",
                self.admin_site.admin_view(self.qb_id_view),
                name=self._qb_id_url_name(),
            )
        ]
        return custom + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = extra_context or {}
        if user_can_change_qb_ids(request.user):
            extra_context["qb_id_url"] = reverse(
                f"admin:{self._qb_id_url_name()}", args=[object_id]
            )
        record = self.get_object(request, unquote(object_id))
        if record is not None and record.qb_id:
            extra_context["delete_refusal"] = self.delete_refusal.format(
                qb_id=record.qb_id, instead=self.delete_instead(record)
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def qb_id_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not user_can_change_qb_ids(request.user):
            raise PermissionDenied
        record = self.get_object(request, unquote(object_id))
        if record is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id}.")
        form = QuickBooksIdForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["action"] == "remove":
                    record = qb_id_remove(
                        record=record, user=staff_user(request), note=data["note"]
                    )
                    done = f"QuickBooks ID removed from {record_label(record)}: it will be "
                    done += "created again in QuickBooks on the next sync."
                else:
                    record = qb_id_override(
                        record=record,
                        new_qb_id=data["new_qb_id"],
                        user=staff_user(request),
                        note=data["note"],
                    )
                    done = f"{record_label(record)} now points at QuickBooks ID {record.qb_id}."
            except ValidationError as exc:
                field = "new_qb_id" if data["action"] == "override" else None
                form.add_error(field, exc)
            else:
                self.log_change(request, record, done)
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                        args=[record.pk],
                    )
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": record,
            "title": f"QuickBooks ID · {record_label(record)}",
            "warning": QB_ID_WARNING,
            "form": form,
            "history": ManualAction.objects.filter(
                record_type=record.sync_type,
                record_id=record.pk,
                kind__in=[ManualAction.Kind.QB_ID_REMOVE, ManualAction.Kind.QB_ID_OVERRIDE],
            ).select_related("user")[:10],
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[record.pk]
            ),
        }
        return TemplateResponse(request, "admin/finance/qb_id.html", context)


# --- models -------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "id")
    search_fields = ("name",)
    inlines = (MembershipInline,)


@admin.register(Customer)
class CustomerAdmin(SyncedRecordAdmin):
    list_display = (
        "display_name",
        "billing_email",
        "city",
        "state",
        "terms_days",
        "is_active",
        "sync_status",
        "qb_id",
    )
    list_filter = ("sync_status", "is_active", "state", "created_at")
    search_fields = ("display_name", "company_name", "billing_email", "city", "qb_id")
    list_select_related = ("company",)

    def update_service(self, customer: Customer, changes: dict[str, Any], user: User) -> Customer:
        return services.customer_update(customer=customer, **changes)

    def create_service(self, *, company: Company, display_name: str, **fields: Any) -> Customer:
        return services.customer_create(company=company, display_name=display_name, **fields)


@admin.register(ChargeCode)
class ChargeCodeAdmin(SyncedRecordAdmin):
    list_display = ("code", "name", "default_rate", "is_active", "sync_status", "qb_id")
    list_filter = ("sync_status", "is_active")
    search_fields = ("code", "name", "description", "qb_id")
    list_select_related = ("company",)

    def update_service(
        self, charge_code: ChargeCode, changes: dict[str, Any], user: User
    ) -> ChargeCode:
        return services.code_update(code=charge_code, **changes)

    def create_service(
        self, *, company: Company, code: str, name: str, **fields: Any
    ) -> ChargeCode:
        return services.charge_code_create(company=company, code=code, name=name, **fields)


class LoadDocumentForm(forms.ModelForm):
    class Meta:
        model = LoadDocument
        fields = ("kind", "file")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "ModelForm.clean returns cleaned_data"
        upload = data.get("file")
        if upload is not None and "file" in self.changed_data:
            try:
                documents.document_content_type(filename=upload.name, size=upload.size)
            except ValidationError as exc:
                self.add_error("file", exc.message_dict.get("file", exc.messages))
        return data


class LoadDocumentInline(admin.TabularInline):
    """PODs, BOLs… stored with the load; saved through finance.documents (attached to the
    load's invoices in QuickBooks per Finance settings)."""

    model = LoadDocument
    form = LoadDocumentForm
    extra = 1
    fields = ("kind", "file", "original_filename", "content_type", "size", "uploaded_at")
    readonly_fields = ("original_filename", "content_type", "size", "uploaded_at")


@admin.register(Load)
class LoadAdmin(admin.ModelAdmin):
    inlines = (LoadDocumentInline,)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not LoadDocument:
            return super().save_formset(request, form, formset, change)
        user = staff_user(request)
        for document in formset.deleted_objects:
            document.delete()  # QuickBooks keeps the copy already attached there
        for row in formset.forms:
            if not row.has_changed() or row in formset.deleted_forms:
                continue
            upload, kind = row.cleaned_data.get("file"), row.cleaned_data.get("kind")
            if row.instance.pk is None:
                documents.load_document_add(load=form.instance, kind=kind, file=upload, user=user)
                continue
            if "file" in row.changed_data:
                documents.load_document_replace(document=row.instance, file=upload, user=user)
            if "kind" in row.changed_data:
                LoadDocument.objects.filter(pk=row.instance.pk).update(kind=kind)
        return None

    list_display = (
        "load_number",
        "container_number",
        "po_number",
        "bol_number",
        "pickup_location",
        "delivery_location",
        "pickup_date",
        "delivery_date",
    )
    list_filter = ("pickup_date", "delivery_date")
    search_fields = (
        "load_number",
        "container_number",
        "po_number",
        "bol_number",
        "reference_number",
        "pickup_location",
        "delivery_location",
    )
    list_select_related = ("company",)
    date_hierarchy = "pickup_date"


def _lines_table(lines: Iterable[ChargeLine]) -> SafeString:
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td style='text-align:right'>{}</td>"
        "<td style='text-align:right'>{}</td><td style='text-align:right'>{}</td></tr>",
        (
            (line.charge_code.code, line.note, line.quantity, line.rate, line.amount)
            for line in lines
        ),
    )
    return format_html(
        "<table><thead><tr><th>Charge</th><th>Note</th><th>Qty</th><th>Rate</th>"
        "<th>Amount</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


class ChargeSetInline(ReadOnlyInline):
    model = ChargeSet
    fields = ("position", "load", "label", "charge_lines")
    readonly_fields = fields
    verbose_name = "charge set (one per load)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChargeSet]:
        return super().get_queryset(request).select_related("load")

    @admin.display(description="Charge lines")
    def charge_lines(self, obj: ChargeSet) -> SafeString:
        return _lines_table(obj.lines.select_related("charge_code"))


@admin.register(Invoice)
class InvoiceAdmin(SyncedRecordAdmin):
    list_display = (
        "doc_number",
        "customer",
        "invoice_date",
        "due_date",
        "total",
        "status",
        "sync_status",
        "qb_id",
    )
    list_filter = ("sync_status", "status", "invoice_date", "due_date")
    search_fields = (
        "doc_number",
        "customer__display_name",
        "charge_sets__load__container_number",
        "charge_sets__load__load_number",
        "charge_sets__load__po_number",
        "qb_id",
    )
    list_select_related = ("customer", "company")
    date_hierarchy = "invoice_date"
    autocomplete_fields = ("customer",)
    readonly_fields = ("company", "status", "total", "qb_balance", "quickbooks_descriptions")
    inlines = [ChargeSetInline]

    actions = ["void_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invoices are built in the TMS (finance.services.invoice_create)

    def check_change(self, invoice: Invoice, fields: dict[str, Any]) -> None:
        services.invoice_update_check(invoice=invoice, fields=fields)

    def update_service(self, invoice: Invoice, changes: dict[str, Any], user: User) -> Invoice:
        return services.invoice_update(invoice=invoice, user=user, **changes)

    def delete_instead(self, invoice: Invoice) -> str:
        return (
            "Void it instead (the “Void” action: here and in QuickBooks), or remove its "
            "QuickBooks ID first with “QuickBooks ID…” (QuickBooks then keeps its copy)."
        )

    @admin.action(description="Void selected invoices (here and in QuickBooks)")
    def void_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        voided = 0
        for invoice in queryset:
            try:
                services.invoice_void(invoice=invoice, user=staff_user(request))
                voided += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if voided:
            self.message_user(request, f"Voided {voided} invoice(s).", messages.SUCCESS)

    @admin.display(description="QuickBooks line descriptions")
    def quickbooks_descriptions(self, obj: Invoice | None) -> str:
        if obj is None or obj.pk is None:
            return "—"
        settings_row = FinanceSettings.objects.filter(company_id=obj.company_id).first()
        settings_row = settings_row or FinanceSettings(company_id=obj.company_id)
        try:
            described = describe_invoice(invoice=obj, settings=settings_row)
        except ValidationError as exc:
            return f"The description mapping is invalid: {' '.join(exc.messages)}"
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "",
                "<li>{}{}</li>",
                ((d.text, " (truncated)" if d.truncated else "") for d in described),
            ),
        )


class ChargeLineInline(ReadOnlyInline):
    model = ChargeLine
    fields = ("position", "charge_code", "quantity", "rate", "amount", "note")
    readonly_fields = fields


@admin.register(ChargeSet)
class ChargeSetAdmin(admin.ModelAdmin):
    list_display = ("invoice", "position", "load", "label")
    search_fields = ("invoice__doc_number", "load__load_number", "load__container_number")
    list_select_related = ("invoice", "load")
    readonly_fields = ("invoice", "load", "position")
    inlines = [ChargeLineInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PaymentApplicationInline(ReadOnlyInline):
    model = PaymentApplication
    fields = ("invoice", "amount")
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(SyncedRecordAdmin):
    list_display = (
        "payment_date",
        "reference_number",
        "customer",
        "amount",
        "method",
        "origin",
        "sync_status",
        "qb_id",
    )
    list_filter = ("sync_status", "method", "origin", "payment_date")
    search_fields = (
        "reference_number",
        "customer__display_name",
        "applications__invoice__doc_number",
        "qb_id",
    )
    list_select_related = ("customer", "company")
    date_hierarchy = "payment_date"
    readonly_fields = ("company", "customer", "amount", "origin")
    inlines = [PaymentApplicationInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # applications are validated by finance.services.payment_create

    def update_service(self, payment: Payment, changes: dict[str, Any], user: User) -> Payment:
        return services.payment_update(payment=payment, **changes)


class CreditMemoLineInline(ReadOnlyInline):
    model = CreditMemoLine
    fields = ("charge_code", "description", "amount")
    readonly_fields = fields


@admin.register(CreditMemo)
class CreditMemoAdmin(SyncedRecordAdmin):
    list_display = (
        "number",
        "customer",
        "memo_date",
        "invoice",
        "total",
        "sync_status",
        "qb_id",
    )
    list_filter = ("sync_status", "memo_date")
    search_fields = ("number", "customer__display_name", "invoice__doc_number", "qb_id")
    list_select_related = ("customer", "invoice", "company")
    date_hierarchy = "memo_date"
    readonly_fields = ("company", "customer", "invoice", "total")
    inlines = [CreditMemoLineInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def update_service(
        self, credit_memo: CreditMemo, changes: dict[str, Any], user: User
    ) -> CreditMemo:
        return services.credit_memo_update(credit_memo=credit_memo, **changes)


# --- payables ------------------------------------------------------------------------------


@admin.register(Vendor)
class VendorAdmin(SyncedRecordAdmin):
    list_display = ("display_name", "kind", "email", "is_1099", "is_active", "sync_status", "qb_id")
    list_filter = ("sync_status", "kind", "is_1099", "is_active")
    search_fields = ("display_name", "qb_display_name", "company_name", "email", "qb_id")
    list_select_related = ("company",)

    def update_service(self, vendor: Vendor, changes: dict[str, Any], user: User) -> Vendor:
        return payables.vendor_update(vendor=vendor, **changes)

    def create_service(self, *, company: Company, display_name: str, **fields: Any) -> Vendor:
        return payables.vendor_create(company=company, display_name=display_name, **fields)


@admin.register(PayCode)
class PayCodeAdmin(SyncedRecordAdmin):
    list_display = ("code", "name", "kind", "account_type", "is_active", "sync_status", "qb_id")
    list_filter = ("sync_status", "kind", "is_active")
    search_fields = ("code", "name", "qb_id")
    list_select_related = ("company",)

    def update_service(self, pay_code: PayCode, changes: dict[str, Any], user: User) -> PayCode:
        return services.code_update(code=pay_code, **changes)

    def create_service(self, *, company: Company, code: str, name: str, **fields: Any) -> PayCode:
        return payables.pay_code_create(company=company, code=code, name=name, **fields)


class BillLineInline(ReadOnlyInline):
    model = BillLine
    fields = ("pay_code", "load", "container_number", "truck_number", "quantity", "rate", "amount")
    readonly_fields = fields


class BillPaymentApplicationInline(ReadOnlyInline):
    model = BillPaymentApplication
    fk_name = "bill"
    fields = ("bill_payment", "amount")
    readonly_fields = fields


@admin.register(Bill)
class BillAdmin(SyncedRecordAdmin):
    list_display = (
        "doc_number",
        "vendor",
        "kind",
        "bill_date",
        "due_date",
        "total",
        "status",
        "sync_status",
        "qb_id",
    )
    list_filter = ("sync_status", "status", "kind", "bill_date")
    search_fields = (
        "doc_number",
        "vendor__display_name",
        "lines__truck_number",
        "lines__container_number",
        "lines__load__load_number",
        "qb_id",
    )
    list_select_related = ("vendor", "company")
    date_hierarchy = "bill_date"
    readonly_fields = ("company", "vendor", "status", "total", "qb_balance")
    inlines = [BillLineInline, BillPaymentApplicationInline]
    actions = ["void_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bills are built in the TMS (finance.payables.bill_create)

    def update_service(self, bill: Bill, changes: dict[str, Any], user: User) -> Bill:
        return payables.bill_update(bill=bill, user=user, **changes)

    def delete_instead(self, bill: Bill) -> str:
        return (
            "Void it instead (the “Void” action: here and in QuickBooks), or remove its "
            "QuickBooks ID first with “QuickBooks ID…” (QuickBooks then keeps its copy)."
        )

    @admin.action(description="Void selected bills (here and in QuickBooks)")
    def void_selected(self, request: HttpRequest, queryset: QuerySet[Bill]) -> None:
        voided = 0
        for bill in queryset:
            try:
                payables.bill_void(bill=bill, user=staff_user(request))
                voided += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
        if voided:
            self.message_user(request, f"Voided {voided} bill(s).", messages.SUCCESS)


@admin.register(BillPayment)
class BillPaymentAdmin(admin.ModelAdmin):
    """Bill payments made in QuickBooks, as pulled: read only."""

    list_display = ("qb_id", "vendor", "payment_date", "amount", "pay_type", "company")
    list_filter = ("company", "pay_type", "payment_date")
    search_fields = ("qb_id", "vendor__display_name", "reference_number")
    list_select_related = ("vendor", "company")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BillPayment | None = None) -> bool:
        return False


class FinanceSettingsForm(forms.ModelForm):
    class Meta:
        model = FinanceSettings
        fields = ["company", *OPTION_FIELDS, *DESCRIPTION_FORM_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "ModelForm.clean returns cleaned_data"
        try:
            validate_mapping(
                fields=data.get("description_fields") or [],
                template=data.get("description_template") or "",
                prefix=data.get("description_prefix") or "",
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(FinanceSettings)
class FinanceSettingsAdmin(admin.ModelAdmin):
    form = FinanceSettingsForm
    list_display = (
        "company",
        "sync_customers",
        "sync_invoices",
        "sync_payments",
        "sync_credit_memos",
        "push_on_change",
        "schedule_minutes",
        "updated_at",
    )
    list_select_related = ("company", "updated_by")
    search_fields = ("company__name",)
    readonly_fields = ("updated_at", "updated_by")

    def save_model(
        self, request: HttpRequest, obj: FinanceSettings, form: forms.ModelForm[Any], change: bool
    ) -> None:
        obj.updated_by = staff_user(request)
        super().save_model(request, obj, form, change)


@admin.register(ManualAction)
class ManualActionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "record_type", "record_id", "user", "note")
    list_filter = ("kind", "record_type", "created_at")
    search_fields = ("note", "user__username", "record_type")
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ManualAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ManualAction | None = None) -> bool:
        return False


@admin.register(InvoiceAttachment)
class InvoiceAttachmentAdmin(SyncedRecordAdmin):
    """A load document on a QuickBooks invoice: made by the sync, fixed on the load (replace the
    file there), so nothing is edited here."""

    list_display = ("invoice", "document", "sync_status", "qb_id")
    list_select_related = ("invoice", "document")
    search_fields = ("invoice__doc_number", "document__original_filename")
    readonly_fields = ("company", "invoice", "document")
    fields = ("company", "invoice", "document")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
