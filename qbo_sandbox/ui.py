"""Sandbox UI: look inside a company and act like a QBO user (changes fire webhooks).

Every page asks for a signed-in sandbox user (`signin_required`) and shows only that user's
companies; the fault API at the end has its own check (admin token or a staff session).
"""

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import attachments, services, store, usage, webhooks
from .faults import QboFault
from .models import Entity, SandboxCompany
from .rules import PAY_TYPES, SETTLEMENTS
from .signin import signin_required
from .store import lock_company

PAGE_SIZE = 25


def _company(request, realm):
    """The company when the signed-in user may access it; else 404, as if it did not exist."""
    return get_object_or_404(services.user_companies(user=request.sandbox_user), realm_id=realm)


def ui_write(company, operation):
    """Run a store operation as the sandbox user; returns (result, error message)."""
    try:
        with transaction.atomic():
            locked = lock_company(company.pk)
            ctx = store.Ctx(locked, source="ui")
            result = operation(ctx)
            webhooks.enqueue(locked, ctx.events)
        return result, None
    except QboFault as fault:
        error = fault.errors[0]
        return None, f"{error['Message']} ({error['code']}): {error['Detail']}"


@signin_required
def company_list(request):
    companies = services.user_companies(user=request.sandbox_user).annotate(objects=Count("entity"))
    return render(request, "qbo_sandbox/company_list.html", {"companies": companies})


@signin_required
def company_detail(request, realm):
    company = _company(request, realm)
    counts = (
        Entity.objects.filter(company=company, deleted=False)
        .values("entity_type")
        .annotate(n=Count("id"))
        .order_by("entity_type")
    )
    sections = []
    for entity_type in ("Customer", "Invoice", "Payment", "Vendor", "Bill", "BillPayment"):
        qs = Entity.objects.filter(company=company, entity_type=entity_type, deleted=False)
        sections.append((entity_type, qs.order_by("-updated", "-qbo_id")[:10]))
    return render(
        request,
        "qbo_sandbox/company_detail.html",
        {
            "company": company,
            "counts": counts,
            "sections": sections,
            "usage": usage.report(company=company),
        },
    )


@signin_required
def entity_list(request, realm, entity_type):
    company = _company(request, realm)
    name = store.canonical_name(entity_type)
    if name is None:
        raise Http404
    qs = Entity.objects.filter(company=company, entity_type=name).order_by("-updated", "-qbo_id")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "qbo_sandbox/entity_list.html",
        {"company": company, "entity_type": name, "page": page},
    )


@signin_required
def entity_detail(request, realm, entity_type, qbo_id):
    company = _company(request, realm)
    name = store.canonical_name(entity_type)
    entity = get_object_or_404(Entity, company=company, entity_type=name or "", qbo_id=qbo_id)
    body = store.deleted_stub(entity) if entity.deleted else store.render(entity)
    return render(
        request,
        "qbo_sandbox/entity_detail.html",
        {
            "company": company,
            "entity": entity,
            "obj": body,
            "pretty": json.dumps(body, indent=2),
            "pay_accounts": _pay_accounts(company) if name == "Bill" else [],
            "attachments": attachments.attachments_of(company, name, qbo_id)
            if name in ("Invoice", "Bill")
            else [],
            "customer_form": CustomerForm(
                initial={
                    "display_name": body.get("DisplayName", ""),
                    "email": (body.get("PrimaryEmailAddr") or {}).get("Address", ""),
                }
            ),
        },
    )


def _pay_accounts(company):
    """The accounts a bill can be paid from: (Id, Name, AccountType), bank accounts first."""
    accounts = Entity.objects.filter(
        company=company,
        entity_type="Account",
        deleted=False,
        active=True,
        data__AccountType__in=["Bank", "Credit Card"],
    ).order_by("qbo_id")
    rows = [(a.qbo_id, a.data.get("Name", ""), a.data["AccountType"]) for a in accounts]
    return sorted(rows, key=lambda row: row[2] != "Bank")


class CustomerForm(forms.Form):
    display_name = forms.CharField(max_length=100)
    email = forms.EmailField(required=False)


class PaymentForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


class BillPaymentForm(PaymentForm):
    """Pay a bill by check (from a bank account) or by card (charged to a credit card account);
    whether the account fits the pay type is the API's business (its fault is shown)."""

    pay_type = forms.ChoiceField(choices=[(name, name) for name in PAY_TYPES])
    account = forms.RegexField(regex=r"^\d+$")


def _back(realm, entity_type, qbo_id):
    return redirect("qbo_sandbox:entity", realm=realm, entity_type=entity_type, qbo_id=qbo_id)


@require_POST
@signin_required
def customer_edit(request, realm, qbo_id):
    company = _company(request, realm)
    form = CustomerForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Invalid input: " + form.errors.as_text())
        return _back(realm, "customer", qbo_id)

    def operation(ctx):
        entity = store.get_entity(ctx.company, "Customer", qbo_id)
        payload = {
            "Id": str(entity.qbo_id),
            "SyncToken": str(entity.sync_token),
            "sparse": True,
            "DisplayName": form.cleaned_data["display_name"],
        }
        if form.cleaned_data["email"]:
            payload["PrimaryEmailAddr"] = {"Address": form.cleaned_data["email"]}
        return store.entity_update(ctx, "Customer", payload)

    _, error = ui_write(company, operation)
    messages.info(request, error or "Customer saved.")
    return _back(realm, "customer", qbo_id)


def _pay_document(request, realm, doc_type, qbo_id, form, how=None, done="made"):
    """Apply a payment of the form's amount to one document (an Invoice: a Payment; a Bill: a
    BillPayment) as the QuickBooks user would; `how` adds the fields saying how it is paid."""
    company = _company(request, realm)
    back = _back(realm, doc_type.lower(), qbo_id)
    if not form.is_valid():
        invalid = form.errors.as_text()
        messages.error(
            request,
            "Enter an amount greater than zero."
            if "amount" in form.errors
            else "Invalid input: " + invalid,
        )
        return back
    settlement = SETTLEMENTS[doc_type]
    amount = float(form.cleaned_data["amount"])

    def operation(ctx):
        doc = store.get_entity(ctx.company, doc_type, qbo_id)
        payload = {
            settlement.party_ref: doc.data.get(settlement.party_ref),
            "TotalAmt": amount,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": str(qbo_id), "TxnType": doc_type}]}
            ],
            **(how or {}),
        }
        return store.entity_create(ctx, settlement.payment, payload)

    payment, error = ui_write(company, operation)
    messages.info(request, error or f"{settlement.payment} {payment.qbo_id} {done}.")
    return back


@require_POST
@signin_required
def invoice_receive_payment(request, realm, qbo_id):
    form = PaymentForm(request.POST)
    return _pay_document(request, realm, "Invoice", qbo_id, form, done="received")


@require_POST
@signin_required
def bill_pay(request, realm, qbo_id):
    form = BillPaymentForm(request.POST)
    how = None
    if form.is_valid():
        pay_type = form.cleaned_data["pay_type"]
        holder, key, _ = PAY_TYPES[pay_type]
        how = {"PayType": pay_type, holder: {key: {"value": form.cleaned_data["account"]}}}
    return _pay_document(request, realm, "Bill", qbo_id, form, how)


def _txn_op(request, realm, entity_type, qbo_id, action):
    """Void or delete one transaction as the QuickBooks user; a deleted one sends the user back
    to the company page."""
    company = _company(request, realm)

    def operation(ctx):
        txn = store.get_entity(ctx.company, entity_type, qbo_id)
        payload = {"Id": str(txn.qbo_id), "SyncToken": str(txn.sync_token)}
        if action == "void":
            return store.entity_void(ctx, entity_type, payload)
        return store.entity_delete(ctx, entity_type, payload)

    _, error = ui_write(company, operation)
    messages.info(request, error or f"{entity_type} {qbo_id} {action}ed.".replace("eed", "ed"))
    if action == "delete" and not error:
        return redirect("qbo_sandbox:company", realm=realm)
    return _back(realm, entity_type.lower(), qbo_id)


# (URL segment, action) of every void / delete button; the view of each is `<segment>_<action>`.
# No bill void: QBO's API voids no bill.
TXN_ACTIONS = (
    ("invoice", "void"),
    ("invoice", "delete"),
    ("bill", "delete"),
    ("billpayment", "void"),
    ("billpayment", "delete"),
)


def _txn_view(segment, action):
    @require_POST
    @signin_required
    def view(request, realm, qbo_id):
        return _txn_op(request, realm, store.canonical_name(segment), qbo_id, action)

    view.__name__ = f"{segment}_{action}"
    return view


TXN_VIEWS = {f"{segment}_{action}": _txn_view(segment, action) for segment, action in TXN_ACTIONS}


# --- fault injection API ----------------------------------------------------------------


def _admin_allowed(request):
    token = getattr(settings, "QBO_SANDBOX_ADMIN_TOKEN", "")
    sent = request.META.get("HTTP_X_SANDBOX_ADMIN_TOKEN", "")
    if token and sent == token:
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


@csrf_exempt
def faults_api(request, realm):
    """GET the company's fault settings; POST JSON {field: value, ...} or {"clear": true}."""
    if not _admin_allowed(request):
        return JsonResponse({"error": "forbidden"}, status=403)
    company = get_object_or_404(SandboxCompany, realm_id=realm)
    if request.method == "POST":
        try:
            fields = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "invalid JSON"}, status=400)
        if not isinstance(fields, dict):
            return JsonResponse({"error": "expected an object"}, status=400)
        try:
            if fields.pop("clear", False):
                company = services.faults_clear(company=company)
            if fields:
                company = services.faults_set(company=company, **fields)
        except (ValueError, TypeError, InvalidOperation) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        except Exception as exc:  # ValidationError from full_clean
            return JsonResponse({"error": str(exc)}, status=400)
    elif request.method != "GET":
        return JsonResponse({"error": "method not allowed"}, status=405)
    return JsonResponse(fault_state(company))


@csrf_exempt
def usage_api(request, realm):
    """GET the realm's metered calls for ?month=YYYY-MM (default this UTC month), per app;
    POST resets them (the same month; ?client_id= for one app). Not metered itself."""
    if not _admin_allowed(request):
        return JsonResponse({"error": "forbidden"}, status=403)
    if request.method not in ("GET", "POST"):
        return JsonResponse({"error": "method not allowed"}, status=405)
    company = get_object_or_404(SandboxCompany, realm_id=realm)
    try:
        month = usage.parse_month(request.GET["month"]) if request.GET.get("month") else None
    except ValueError:
        return JsonResponse({"error": "month must be YYYY-MM"}, status=400)
    client_id = request.GET.get("client_id") or None
    if request.method == "POST":
        usage.reset(company=company, month=month, client_id=client_id)
    return JsonResponse(usage.report(company=company, month=month, client_id=client_id))


def fault_state(company):
    data = {name: getattr(company, name) for name in sorted(services.FAULT_FIELDS)}
    data["realm_id"] = company.realm_id
    data["tokens_expired_before"] = (
        company.tokens_expired_before.isoformat() if company.tokens_expired_before else None
    )
    return data
