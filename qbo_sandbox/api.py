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

from . import attachments, faults, store, throttle, usage, webhooks
from .faults import QboFault, fault_response, json_response
from .models import Entity, RequestLog, SandboxCompany, Token
from .oauth import bearer_token, token_is_live
from .query import run_query
from .store import lock_company
from .timefmt import meta_time, parse_qbo_datetime, qbo_time

MAX_BATCH_ITEMS = 30
MAX_REQUESTID = 50  # in a batch: requestid + bId
CDC_LOOKBACK_DAYS = 30
CDC_MAX_OBJECTS = 1000
BATCH_KEYS = {"bId", "operation", "optionsData"}


@csrf_exempt
def v3(request, realm, rest):
    company = SandboxCompany.objects.filter(realm_id=realm).first()
    parts = [p for p in rest.strip("/").split("/") if p]
    token, refusal = _authorization(request, company)
    if refusal is not None:
        return refusal
    shape = _shape(parts) if parts else None
    meter = usage.Meter(app=token.app, company=company, kind=usage.call_kind(request.method, shape))
    refusal = _gateway_refusal(company, meter)
    if refusal is not None:
        return refusal
    request.qbo_usage = meter  # the batch endpoint counts its items on it
    try:
        response = route(request, company, parts, rest)
    except QboFault as fault:
        response = fault_response(fault)
    meter.save()  # served, faults included: Intuit counts the calls it answers
    return response


def _gateway_refusal(company, meter):
    """What Intuit's gateway answers before the v3 service sees the request (throttle, the
    monthly CorePlus allowance, then injected latency and errors); None to let it through."""
    webhooks.maybe_resume()  # any authorized request restarts deliveries after a restart
    if not throttle.admit(company, is_batch=meter.kind == usage.BATCH):
        return faults.throttled(company.throttle_format)
    if meter.kind != usage.BATCH and not meter.take(meter.kind):
        return meter.refusal()  # a batch's Query items are refused one by one instead
    if company.latency_ms:
        time.sleep(company.latency_ms / 1000)
    return _injected_error(company)


def _authorization(request, company):
    """(token, None) for a live bearer token of this realm; (None, 401) for a missing, expired
    or revoked one; (None, 403) for a live one of another realm."""
    value = bearer_token(request)
    token = (
        Token.objects.select_related("company", "app").filter(access_token=value).first()
        if value
        else None
    )
    if token is None or not token_is_live(token):
        return None, faults.unauthorized(
            "Token expired: " + (value[:20] + "..." if value else "no bearer token")
        )
    if company is None or token.company_id != company.pk:
        return None, faults.forbidden()
    return token, None


def _injected_error(company):
    """Fault injection: a share of requests fail with a gateway 500 or a 10000 SystemFault."""
    if not company.error_rate or random.random() >= company.error_rate:
        return None
    style = company.error_style
    if style == "random":
        style = random.choice(["gateway", "systemfault"])
    return faults.gateway_500() if style == "gateway" else fault_response(faults.system_fault())


def _body_json(request):
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        raise QboFault(
            2010, "Request has invalid or unsupported property", "Request body is not valid JSON"
        )


def route(request, company, parts, rest):
    """Dispatch the v3 path through V3_ROUTES; any path or method not there is Intuit's
    "Unsupported Operation" fault."""
    if not parts:
        raise faults.unsupported_operation(f"/v3/company/{company.realm_id}/")
    shape = _shape(parts)
    handler = V3_ROUTES.get((request.method, shape)) or V3_ROUTES.get((ANY_METHOD, shape))
    if handler is None:
        raise faults.unsupported_operation(f"/v3/company/{company.realm_id}/{rest}")
    return handler(request, company, parts)


def _routable_entity(name):
    """The entity a path segment names (any case); Preferences and CompanyInfo have their own
    read-only endpoints and no entity operations."""
    entity_type = store.canonical_name(name)
    return None if entity_type in (None, "Preferences", "CompanyInfo") else entity_type


def _shape(parts):
    """The path as a V3_ROUTES key: a service name as itself (any case), an entity name as
    {entity}, the second segment as {id}, later ones literally; None when it names nothing."""
    head = parts[0].lower()
    if head in SERVICE_PATHS:
        first = head
    elif _routable_entity(parts[0]) is not None:
        first = "{entity}"
    else:
        return None
    return "/".join([first, "{id}", *parts[2:]] if len(parts) > 1 else [first])


def _query_text(request):
    """The query: python-quickbooks POSTs it as application/text; GET (and an empty POST body)
    take it from ?query=."""
    if request.method != "POST":
        return request.GET.get("query", "")
    sql = request.body.decode("utf-8")
    return sql if sql.strip() else request.GET.get("query", "")


def query_endpoint(request, company, parts):
    return _ok(run_query(company, _query_text(request)))


def batch_endpoint(request, company, parts):
    return batch(request, company)


def cdc_endpoint(request, company, parts):
    return _ok(cdc(company, request.GET.get("entities", ""), request.GET.get("changedSince", "")))


def preferences_endpoint(request, company, parts):
    return _ok({"Preferences": preferences(company)})


def company_info_endpoint(request, company, parts):
    return _ok({"CompanyInfo": company_info(company)})  # whatever id is asked for


def read_entity(request, company, parts):
    entity_type = _routable_entity(parts[0])
    entity = store.get_entity(company, entity_type, parts[1])
    return _ok({entity_type: store.render(entity)})


def entity_pdf(request, company, parts):
    entity = store.get_entity(company, _routable_entity(parts[0]), parts[1])
    return HttpResponse(_pdf(entity), content_type="application/pdf")


def send_entity(request, company, parts):
    entity_type = _routable_entity(parts[0])
    return write(request, company, lambda ctx: send(ctx, entity_type, parts[1], request))


def upload_endpoint(request, company, parts):
    """POST /upload: files with their Attachable metadata (qbo_sandbox/attachments.py)."""
    uploaded = attachments.parse(request)  # before write(): a bad body is refused whatever the id
    return write(
        request,
        company,
        lambda ctx: attachments.upload(ctx, request, uploaded),
        replayable=attachments.all_accepted,
    )


def download_endpoint(request, company, parts):
    """GET /download/<id>: the file's temporary download URL, as text (Intuit's answer)."""
    return HttpResponse(attachments.temp_download_uri(company, parts[1]), content_type="text/plain")


def write_entity(request, company, parts):
    """POST /<entity>: create or update, or ?operation=delete|void, ?operation=update&include=void."""
    entity_type = _routable_entity(parts[0])
    payload = _body_json(request)  # before write(): bad JSON is 2010 whatever the requestid
    operation = request.GET.get("operation", "").lower()
    include = request.GET.get("include", "").lower()
    return write(
        request,
        company,
        lambda ctx: single_write(ctx, entity_type, payload, operation, include),
    )


ANY_METHOD = "*"
SERVICE_PATHS = {"query", "batch", "cdc", "preferences", "companyinfo", "upload", "download"}
# (HTTP method, path shape from _shape) → handler(request, company, parts).
V3_ROUTES = {
    (ANY_METHOD, "query"): query_endpoint,
    ("POST", "batch"): batch_endpoint,
    ("GET", "cdc"): cdc_endpoint,
    ("GET", "preferences"): preferences_endpoint,
    ("GET", "companyinfo"): company_info_endpoint,
    ("GET", "companyinfo/{id}"): company_info_endpoint,
    ("POST", "upload"): upload_endpoint,
    ("GET", "download/{id}"): download_endpoint,
    ("POST", "{entity}"): write_entity,
    ("GET", "{entity}/{id}"): read_entity,
    ("GET", "{entity}/{id}/pdf"): entity_pdf,
    ("POST", "{entity}/{id}/send"): send_entity,
}


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


def save_entity(ctx, entity_type, payload):
    """Create, or update when the body names an Id: a full update, or a sparse one with
    "sparse": true (store.entity_update)."""
    if payload.get("Id") in (None, "", 0, "0"):
        return store.render(store.entity_create(ctx, entity_type, payload))
    return store.render(store.entity_update(ctx, entity_type, payload))


def delete_entity(ctx, entity_type, payload):
    return store.entity_delete(ctx, entity_type, payload)  # Intuit's {"status": "Deleted"} stub


def void_entity(ctx, entity_type, payload):
    return store.render(store.entity_void(ctx, entity_type, payload))


# ?operation= (lower case) → what a single write or a batch item does.
WRITE_OPERATIONS = {
    "": save_entity,
    "create": save_entity,
    "update": save_entity,
    "delete": delete_entity,
    "void": void_entity,
}


def single_write(ctx, entity_type, payload, operation, include=""):
    if not isinstance(payload, dict):
        raise QboFault(
            2010, "Request has invalid or unsupported property", "Body must be an object"
        )
    if set(payload) == {entity_type} and isinstance(payload[entity_type], dict):
        payload = payload[entity_type]  # wrapped body {"Customer": {...}}
    includes = {part.strip() for part in include.split(",")}
    if operation == "update" and "void" in includes:
        operation = "void"  # how a Payment, a BillPayment, a SalesReceipt, ... is voided
    # A DocNumber QBO would refuse as a duplicate (6140) is taken when the request says so.
    ctx.allow_duplicate_doc_number = "allowduplicatedocnum" in includes
    write_one = WRITE_OPERATIONS.get(operation)
    if write_one is None:
        raise faults.unsupported_operation(f"operation={operation}")
    return {entity_type: write_one(ctx, entity_type, payload)}


def _requestid_too_long(requestid):
    return faults.business_validation(
        "You cannot enter more than 50 characters in the request_id field. The request_id "
        f"field currently has {len(requestid)} characters."
    )


def _requestid(request):
    requestid = request.GET.get("requestid") or ""
    if len(requestid) > MAX_REQUESTID:
        raise _requestid_too_long(requestid)
    return requestid


def write(request, company, operation, replayable=lambda body: True):
    """Run one write under the company lock with requestid replay and injected timeouts. An
    answer `replayable` refuses (an upload with a refused file) is not kept for replay, like a
    fault: the fixed retry with the same requestid is written."""
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
        if requestid and replayable(body):
            _log_answer(locked, requestid, body, looked=honour)
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
    items = _batch_items(request)
    requestid = request.GET.get("requestid") or ""
    meter = getattr(request, "qbo_usage", None)
    if meter is not None:
        meter.itemised = True
    with transaction.atomic():
        locked = lock_company(company.pk)
        honour = bool(requestid) and not locked.ignore_requestid
        ctx = store.Ctx(locked)
        results = [_metered_answer(ctx, item, requestid, honour, meter) for item in items]
        webhooks.enqueue(locked, ctx.events)
    return _maybe_lose_response(
        locked, json_response({"BatchItemResponse": results, "time": qbo_time()})
    )


def _batch_items(request):
    """The BatchItemRequest list; a missing, empty or too long one refuses the whole batch."""
    payload = _body_json(request)
    items = payload.get("BatchItemRequest") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise faults.required_missing("BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        raise faults.business_validation(
            f"The number of batch items ({len(items)}) exceeds the maximum allowed "
            f"({MAX_BATCH_ITEMS})."
        )
    return items


def _metered_answer(ctx, item, requestid, honour, meter):
    """Each item is metered by its own kind (a Query CorePlus, a write Core); a Query item past
    the app's monthly CorePlus allowance is answered with the limit's Fault and not run."""
    kind = usage.QUERY if isinstance(item, dict) and "Query" in item else usage.CORE
    if meter is not None and not meter.take(kind):
        bid = str(item.get("bId", ""))
        return _item_fault(usage.coreplus_limit_fault(usage.allowance(meter.app)), bid)
    return _batch_answer(ctx, item, requestid, honour)


def _batch_answer(ctx, item, requestid, honour):
    """One item's BatchItemResponse entry: its replayed first answer, its result, or its Fault.
    Items are independent: each runs in its own savepoint, and a failed one announces nothing."""
    bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
    key = requestid + bid
    if requestid and len(key) > MAX_REQUESTID:
        return _item_fault(_requestid_too_long(key), bid)
    if honour:
        logged = RequestLog.objects.filter(company=ctx.company, requestid=key).first()
        if logged is not None:
            return json.loads(logged.body)
    events_before = len(ctx.events)
    try:
        with transaction.atomic():
            result = batch_item(ctx, item)
    except QboFault as fault:
        del ctx.events[events_before:]
        ctx.live_refs.clear()  # what the rolled-back item wrote is gone again
        return _item_fault(fault, bid)
    result["bId"] = bid
    if requestid and "QueryResponse" not in result:  # queries are not replayed
        _log_answer(ctx.company, key, result, looked=honour)
    return result


def _log_answer(company, requestid, body, *, looked):
    """Keep the first answer for replay. When the caller just looked and found none, a plain
    insert does (the company lock is held); otherwise (requestid ignored) the last one wins."""
    if looked:
        RequestLog.objects.create(
            company=company, requestid=requestid, status=200, body=json.dumps(body)
        )
    else:
        RequestLog.objects.update_or_create(
            company=company, requestid=requestid,
            defaults={"status": 200, "body": json.dumps(body)},
        )  # fmt: skip


def _item_fault(fault, bid):
    errors = [dict(e, element=e.get("element", "")) for e in fault.errors]
    return {"Fault": {"Error": errors, "type": fault.type}, "bId": bid}


def batch_item(ctx, item):
    """One BatchItemRequest entry: a Query, or a write as a single request would do it."""
    if not isinstance(item, dict):
        raise faults.required_missing("BatchItemRequest")
    if "Query" in item:
        return run_query(ctx.company, item["Query"])
    key, entity_type = _batch_entity(item)
    operation = _batch_operation(item)
    payload = item[key]
    if not isinstance(payload, dict):
        raise QboFault(2010, "Request has invalid or unsupported property", key)
    if operation == "create" and payload.get("Id"):
        operation = "update"
    if operation == "update" and not payload.get("Id"):
        raise faults.required_missing("Id")
    return single_write(
        ctx,
        entity_type,
        payload,
        "" if operation in ("create", "update") else operation,
        str(item.get("optionsData") or "").lower(),
    )


def _batch_entity(item):
    """The item's one entity key (as sent) and the entity it names."""
    names = [k for k in item if k not in BATCH_KEYS]
    if len(names) != 1 or store.canonical_name(names[0]) is None:
        raise faults.required_missing("entity")
    return names[0], store.canonical_name(names[0])


def _batch_operation(item):
    """create (the default), update, delete, or void: "operation": "update" with
    "optionsData": "void"."""
    operation = str(item.get("operation") or "create").lower()
    options = str(item.get("optionsData") or "").lower()
    if operation == "update" and options == "void":
        operation = "void"
    if operation not in ("create", "update", "delete", "void"):
        raise faults.unsupported_operation(f"operation={operation}")
    return operation


def cdc(company, entities, changed_since):
    if not entities.strip():
        raise faults.required_missing("entities")
    since = _cdc_since(changed_since)
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


def _cdc_since(changed_since):
    """changedSince as a datetime (a date, or naive, is Pacific); at most 30 days back."""
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
    return since


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
