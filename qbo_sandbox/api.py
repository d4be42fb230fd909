"""The v3 API: one dispatcher over the generic store for every entity name.

Order of checks mirrors Intuit's stack: gateway (bearer token, throttle, injected faults), then
the v3 service (routing, requestid replay, entity rules).
"""

import datetime as dt
import json
import random
import time

from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import faults, store, throttle, webhooks
from .faults import QboFault, fault_response, json_response
from .models import Entity, RequestLog, SandboxCompany, Token
from .oauth import bearer_token, token_is_live
from .query import run_query
from .store import lock_company
from .timefmt import meta_time, parse_qbo_datetime, qbo_time

MAX_BATCH_ITEMS = 30
CDC_LOOKBACK_DAYS = 30
CDC_MAX_OBJECTS = 1000
BATCH_KEYS = {"bId", "operation", "optionsData"}


@csrf_exempt
def v3(request, realm, rest):
    company = SandboxCompany.objects.filter(realm_id=realm).first()
    value = bearer_token(request)
    token = (
        Token.objects.select_related("company").filter(access_token=value).first()
        if value
        else None
    )
    if token is None or not token_is_live(token):
        return faults.unauthorized(
            "Token expired: " + (value[:20] + "..." if value else "no bearer token")
        )
    if company is None or token.company_id != company.pk:
        return faults.forbidden()
    parts = [p for p in rest.strip("/").split("/") if p]
    webhooks.maybe_resume()
    if not throttle.admit(company, is_batch=parts == ["batch"]):
        return faults.throttled(company.throttle_format)
    if company.latency_ms:
        time.sleep(company.latency_ms / 1000)
    if company.error_rate and random.random() < company.error_rate:
        style = company.error_style
        if style == "random":
            style = random.choice(["gateway", "systemfault"])
        return faults.gateway_500() if style == "gateway" else fault_response(faults.system_fault())
    try:
        return route(request, company, parts, rest)
    except QboFault as fault:
        return fault_response(fault)


def _body_json(request):
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        raise QboFault(
            2010, "Request has invalid or unsupported property", "Request body is not valid JSON"
        )


def route(request, company, parts, rest):
    if not parts:
        raise faults.unsupported_operation(f"/v3/company/{company.realm_id}/")
    head = parts[0].lower()
    if head == "query" and len(parts) == 1:
        sql = (
            request.body.decode("utf-8")
            if request.method == "POST"
            else request.GET.get("query", "")
        )
        if request.method == "POST" and not sql.strip():
            sql = request.GET.get("query", "")
        return _ok(run_query(company, sql))
    if head == "batch" and len(parts) == 1 and request.method == "POST":
        return batch(request, company)
    if head == "cdc" and len(parts) == 1 and request.method == "GET":
        return _ok(
            cdc(company, request.GET.get("entities", ""), request.GET.get("changedSince", ""))
        )
    if head == "preferences" and len(parts) == 1 and request.method == "GET":
        return _ok({"Preferences": preferences(company)})
    if head == "companyinfo" and request.method == "GET" and len(parts) <= 2:
        return _ok({"CompanyInfo": company_info(company)})
    entity_type = store.canonical_name(parts[0])
    if entity_type is None or entity_type in ("Preferences", "CompanyInfo"):
        raise faults.unsupported_operation(f"/v3/company/{company.realm_id}/{rest}")
    if len(parts) == 2 and request.method == "GET":
        entity = store.get_entity(company, entity_type, parts[1])
        return _ok({entity_type: store.render(entity)})
    if len(parts) == 3 and parts[2] == "pdf" and request.method == "GET":
        entity = store.get_entity(company, entity_type, parts[1])
        return HttpResponse(_pdf(entity), content_type="application/pdf")
    if len(parts) == 3 and parts[2] == "send" and request.method == "POST":
        return write(request, company, lambda ctx: send(ctx, entity_type, parts[1], request))
    if len(parts) == 1 and request.method == "POST":
        payload = _body_json(request)
        operation = request.GET.get("operation", "").lower()
        include = request.GET.get("include", "").lower()
        return write(
            request,
            company,
            lambda ctx: single_write(ctx, entity_type, payload, operation, include),
        )
    raise faults.unsupported_operation(f"/v3/company/{company.realm_id}/{rest}")


def _pdf(entity):
    text = f"{entity.entity_type} {entity.data.get('DocNumber') or entity.qbo_id}"
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
        b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
        b"4 0 obj<</Length " + str(len(stream)).encode() + b">>stream\n" + stream +
        b"\nendstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )  # fmt: skip


def send(ctx, entity_type, raw_id, request):
    """POST /invoice/<id>/send[?sendTo=]: marks the document emailed."""
    entity = store.get_entity(ctx.company, entity_type, raw_id)
    data = dict(entity.data)
    data["EmailStatus"] = "EmailSent"
    send_to = request.GET.get("sendTo")
    if send_to:
        data["BillEmail"] = {"Address": send_to}
    data.setdefault("DeliveryInfo", {})
    data["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": qbo_time()}
    store.touch(ctx, entity, data)
    ctx.announce(entity, "emailed")
    return {entity_type: store.render(entity)}


def _ok(body):
    body["time"] = qbo_time()
    return json_response(body)


def single_write(ctx, entity_type, payload, operation, include=""):
    if not isinstance(payload, dict):
        raise QboFault(
            2010, "Request has invalid or unsupported property", "Body must be an object"
        )
    if set(payload) == {entity_type} and isinstance(payload[entity_type], dict):
        payload = payload[entity_type]  # wrapped body {"Customer": {...}}
    if operation == "delete":
        return {entity_type: store.entity_delete(ctx, entity_type, payload)}
    if operation == "void" or (operation == "update" and include == "void"):
        return {entity_type: store.render(store.entity_void(ctx, entity_type, payload))}
    if operation not in ("", "create", "update"):
        raise faults.unsupported_operation(f"operation={operation}")
    raw_id = payload.get("Id")
    if raw_id not in (None, "", 0, "0"):
        entity = store.entity_update(ctx, entity_type, payload)
    else:
        entity = store.entity_create(ctx, entity_type, payload)
    return {entity_type: store.render(entity)}


def _requestid(request):
    requestid = request.GET.get("requestid") or ""
    if len(requestid) > 50:
        raise faults.business_validation(
            "You cannot enter more than 50 characters in the request_id field. The request_id "
            f"field currently has {len(requestid)} characters."
        )
    return requestid


def write(request, company, operation):
    """Run one write under the company lock with requestid replay and injected timeouts."""
    requestid = _requestid(request)
    with transaction.atomic():
        locked = lock_company(company.pk)
        honour = bool(requestid) and not locked.ignore_requestid
        if honour:
            logged = RequestLog.objects.filter(company=locked, requestid=requestid).first()
            if logged is not None:
                return json_response(json.loads(logged.body), logged.status)
        ctx = store.Ctx(locked)
        try:
            with transaction.atomic():
                body = operation(ctx)
        except QboFault as fault:
            return fault_response(fault)
        body["time"] = qbo_time()
        if requestid:
            RequestLog.objects.update_or_create(
                company=locked, requestid=requestid,
                defaults={"status": 200, "body": json.dumps(body)},
            )  # fmt: skip
        webhooks.enqueue(locked, ctx.events)
    return _maybe_lose_response(locked, json_response(body))


def _maybe_lose_response(company, response):
    """Fault "commit then timeout": the write is committed, the answer never arrives in time."""
    if company.commit_then_timeout_rate and random.random() < company.commit_then_timeout_rate:
        if company.timeout_mode == "sleep":
            time.sleep(company.timeout_sleep_seconds)
            return response
        return faults.gateway_504()
    return response


def batch(request, company):
    payload = _body_json(request)
    items = payload.get("BatchItemRequest") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise faults.required_missing("BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        raise faults.business_validation(
            f"The number of batch items ({len(items)}) exceeds the maximum allowed "
            f"({MAX_BATCH_ITEMS})."
        )
    requestid = request.GET.get("requestid") or ""
    results = []
    with transaction.atomic():
        locked = lock_company(company.pk)
        honour = bool(requestid) and not locked.ignore_requestid
        ctx = store.Ctx(locked)
        for item in items:
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            key = requestid + bid
            if requestid and len(key) > 50:
                fault = faults.business_validation(
                    "You cannot enter more than 50 characters in the request_id field. The "
                    f"request_id field currently has {len(key)} characters."
                )
                results.append(_item_fault(fault, bid))
                continue
            if honour:
                logged = RequestLog.objects.filter(company=locked, requestid=key).first()
                if logged is not None:
                    results.append(json.loads(logged.body))
                    continue
            events_before = len(ctx.events)
            try:
                with transaction.atomic():
                    result = batch_item(ctx, item)
            except QboFault as fault:
                del ctx.events[events_before:]
                results.append(_item_fault(fault, bid))
                continue
            result["bId"] = bid
            results.append(result)
            if requestid and "QueryResponse" not in result:
                RequestLog.objects.update_or_create(
                    company=locked,
                    requestid=key,
                    defaults={"status": 200, "body": json.dumps(result)},
                )
        webhooks.enqueue(locked, ctx.events)
    return _maybe_lose_response(
        locked, json_response({"BatchItemResponse": results, "time": qbo_time()})
    )


def _item_fault(fault, bid):
    errors = [dict(e, element=e.get("element", "")) for e in fault.errors]
    return {"Fault": {"Error": errors, "type": fault.type}, "bId": bid}


def batch_item(ctx, item):
    if not isinstance(item, dict):
        raise faults.required_missing("BatchItemRequest")
    if "Query" in item:
        return run_query(ctx.company, item["Query"])
    names = [k for k in item if k not in BATCH_KEYS]
    if len(names) != 1 or store.canonical_name(names[0]) is None:
        raise faults.required_missing("entity")
    entity_type = store.canonical_name(names[0])
    operation = str(item.get("operation") or "create").lower()
    options = str(item.get("optionsData") or "").lower()
    if operation == "update" and options == "void":
        operation = "void"
    if operation not in ("create", "update", "delete", "void"):
        raise faults.unsupported_operation(f"operation={operation}")
    payload = item[names[0]]
    if not isinstance(payload, dict):
        raise QboFault(2010, "Request has invalid or unsupported property", names[0])
    if operation == "create" and payload.get("Id"):
        operation = "update"
    if operation == "update" and not payload.get("Id"):
        raise faults.required_missing("Id")
    return single_write(
        ctx, entity_type, payload, "" if operation in ("create", "update") else operation
    )


def cdc(company, entities, changed_since):
    if not entities.strip():
        raise faults.required_missing("entities")
    if not changed_since.strip():
        raise faults.required_missing("changedSince")
    since = parse_qbo_datetime(changed_since)
    if since is None:
        raise faults.business_validation(f"Invalid changedSince value: {changed_since}")
    if since < timezone.now() - dt.timedelta(days=CDC_LOOKBACK_DAYS):
        raise faults.business_validation(
            f"Operation cdc with changedSince date {changed_since} which is older than fixed "
            "days is not supported."
        )
    responses = []
    budget = CDC_MAX_OBJECTS
    for raw in entities.split(","):
        entity_type = store.canonical_name(raw.strip())
        if entity_type is None:
            raise faults.business_validation(f"Invalid entity name in cdc: {raw.strip()}")
        rows = list(
            Entity.objects.filter(
                company=company, entity_type=entity_type, updated__gte=since
            ).order_by("updated", "qbo_id")[: max(budget, 0)]
        )
        budget -= len(rows)
        objects = [store.render(e) for e in rows if not e.deleted]
        objects += [store.deleted_stub(e) for e in rows if e.deleted]
        if objects:
            responses.append({entity_type: objects, "startPosition": 1, "maxResults": len(objects)})
        else:
            responses.append({})
    return {"CDCResponse": [{"QueryResponse": responses}]}


def _meta(company):
    return {"CreateTime": meta_time(company.created), "LastUpdatedTime": meta_time(company.created)}


def preferences(company):
    return {
        "AccountingInfoPrefs": {
            "TrackDepartments": False,
            "ClassTrackingPerTxn": False,
            "CustomerTerminology": "Customers",
        },  # fmt: skip
        "SalesFormsPrefs": {
            "CustomTxnNumbers": True,
            "AllowDeposit": False,
            "AllowDiscount": True,
            "AllowShipping": False,
            "ETransactionEnabledStatus": "NotApplicable",
        },
        "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}},
        "TaxPrefs": {"UsingSalesTax": False, "PartnerTaxEnabled": False},
        "OtherPrefs": {
            "NameValue": [
                {
                    "Name": "SalesFormsPrefs.WarnDuplicateDocNum",
                    "Value": "true" if company.warn_duplicate_doc_number else "false",
                }
            ]
        },
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": "0",
        "MetaData": _meta(company),
    }


def company_info(company):
    return {
        "CompanyName": company.name,
        "LegalName": company.name,
        "CompanyAddr": {
            "Line1": "1 Sandbox Way",
            "City": "Mountain View",
            "Country": "US",
            "CountrySubDivisionCode": "CA",
            "PostalCode": "94043",
        },  # fmt: skip
        "Country": "US",
        "SupportedLanguages": "en",
        "FiscalYearStartMonth": "January",
        "domain": "QBO",
        "sparse": False,
        "Id": "1",
        "SyncToken": "0",
        "MetaData": _meta(company),
    }


def not_found(request, *args, **kwargs):
    return HttpResponse(status=404)
