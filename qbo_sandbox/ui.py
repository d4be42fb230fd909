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

from . import services, store, webhooks
from .faults import QboFault
from .models import Entity, SandboxCompany
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
    for entity_type in ("Customer", "Invoice", "Payment"):
        qs = Entity.objects.filter(company=company, entity_type=entity_type, deleted=False)
        sections.append((entity_type, qs.order_by("-updated", "-qbo_id")[:10]))
    return render(
        request,
        "qbo_sandbox/company_detail.html",
        {"company": company, "counts": counts, "sections": sections},
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
            "customer_form": CustomerForm(
                initial={
                    "display_name": body.get("DisplayName", ""),
                    "email": (body.get("PrimaryEmailAddr") or {}).get("Address", ""),
                }
            ),
        },
    )


class CustomerForm(forms.Form):
    display_name = forms.CharField(max_length=100)
    email = forms.EmailField(required=False)


class PaymentForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


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


@require_POST
@signin_required
def invoice_receive_payment(request, realm, qbo_id):
    company = _company(request, realm)
    form = PaymentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an amount greater than zero.")
        return _back(realm, "invoice", qbo_id)

    def operation(ctx):
        invoice = store.get_entity(ctx.company, "Invoice", qbo_id)
        amount = float(form.cleaned_data["amount"])
        payload = {
            "CustomerRef": invoice.data.get("CustomerRef"),
            "TotalAmt": amount,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": str(qbo_id), "TxnType": "Invoice"}]}
            ],
        }
        return store.entity_create(ctx, "Payment", payload)

    payment, error = ui_write(company, operation)
    messages.info(request, error or f"Payment {payment.qbo_id} received.")
    return _back(realm, "invoice", qbo_id)


def _txn_op(request, realm, qbo_id, action):
    company = _company(request, realm)

    def operation(ctx):
        invoice = store.get_entity(ctx.company, "Invoice", qbo_id)
        payload = {"Id": str(invoice.qbo_id), "SyncToken": str(invoice.sync_token)}
        if action == "void":
            return store.entity_void(ctx, "Invoice", payload)
        return store.entity_delete(ctx, "Invoice", payload)

    _, error = ui_write(company, operation)
    messages.info(request, error or f"Invoice {qbo_id} {action}ed.".replace("eed", "ed"))
    if action == "delete" and not error:
        return redirect("qbo_sandbox:company", realm=realm)
    return _back(realm, "invoice", qbo_id)


@require_POST
@signin_required
def invoice_void(request, realm, qbo_id):
    return _txn_op(request, realm, qbo_id, "void")


@require_POST
@signin_required
def invoice_delete(request, realm, qbo_id):
    return _txn_op(request, realm, qbo_id, "delete")


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


def fault_state(company):
    data = {name: getattr(company, name) for name in sorted(services.FAULT_FIELDS)}
    data["realm_id"] = company.realm_id
    data["tokens_expired_before"] = (
        company.tokens_expired_before.isoformat() if company.tokens_expired_before else None
    )
    return data
