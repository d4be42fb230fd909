"""Intuit-shaped error bodies (qbo-wire-shapes.md §1–3) and the exception the store raises."""

import json
import time as _time

from django.http import HttpResponse

from .timefmt import qbo_time


class QboFault(Exception):
    """A v3 fault: one or more errors, a type, an HTTP status (400 for validation)."""

    def __init__(
        self, code, message, detail="", element=None, *, type="ValidationFault", status=400
    ):
        super().__init__(f"{code} {message}: {detail}")
        self.errors = [{"Message": message, "Detail": detail, "code": str(code)}]
        if element is not None:
            self.errors[0]["element"] = element
        self.type = type
        self.status = status

    def body(self):
        return {"Fault": {"Error": self.errors, "type": self.type}, "time": qbo_time()}


def unsupported_property(entity_type, name):
    return QboFault(
        2010,
        "Request has invalid or unsupported property",
        f'Property Name:Unrecognized field "{name}" (class com.intuit.schema.finance.v3.'
        f"{entity_type}), not marked as ignorable specified is unsupported or invalid",
    )


def required_missing(element):
    return QboFault(
        2020,
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def invalid_id(value):
    return QboFault(
        2030, "Invalid ID", f"Id should be a valid number. Supplied value:{value}", "Id"
    )


def object_not_found(detail=None):
    return QboFault(
        610,
        "Object Not Found",
        detail
        or "Object Not Found : Something you're trying to use has been made inactive. Check the "
        "fields with accounts, customers, items, vendors or employees.",
        "",
    )


def invalid_reference(entity_type, value):
    return QboFault(
        2500,
        "Invalid Reference Id",
        f"Invalid Reference Id : {entity_type} assigned to this transaction has been deleted or "
        f"does not exist. Id={value}",
        "",
    )


def stale_object():
    return QboFault(
        5010,
        "Stale Object Error",
        "Stale Object Error : You and sandbox user were working on this at the same time. "
        "sandbox user finished before you did, so your work was not saved.",
        "",
    )


def duplicate_name(existing_id):
    return QboFault(
        6240, "Duplicate Name Exists Error", f"The name supplied already exists. : Id={existing_id}"
    )


def duplicate_doc_number(doc_number, txn_type, txn_id):
    return QboFault(
        6140,
        "Duplicate Document Number Error",
        "Duplicate Document Number Error : You must specify a different number. This number has "
        f"already been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with "
        f"TxnId={txn_id}",
    )


def business_validation(detail):
    return QboFault(
        6000,
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def too_long(element, limit):
    return QboFault(
        6000,
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: String length is either shorter or longer than supported "
        f"by specification. {element}:Max={limit}",
        element,
    )


def unsupported_operation(path):
    return QboFault(
        500,
        "Unsupported Operation",
        f"Operation Could not find resource for relative : {path} is not supported.",
    )


def system_fault():
    return QboFault(
        10000,
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data. "
        "Please wait a few minutes and try again. If the problem persists, contact customer support.",
        type="SystemFault",
        status=500,
    )


def query_parse_error(detail):
    return QboFault(4000, "Error parsing query", f"QueryParserError: {detail}")


def json_response(body, status=200, headers=None):
    response = HttpResponse(
        json.dumps(body), status=status, content_type="application/json;charset=UTF-8"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    response["intuit_tid"] = new_tid()
    return response


def fault_response(fault):
    return json_response(fault.body(), status=fault.status)


def new_tid():
    import uuid

    return f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"


def gateway_envelope(message, detail, code, type_):
    """Intuit's gateway body (401/403/429/500/504): lowercase keys, nulls, epoch-ms time."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [{"message": message, "detail": detail, "code": code, "element": None}],
            "type": type_,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(_time.time() * 1000),
        "status": None,
        "cdcresponse": [],
    }


def unauthorized(detail="Token expired: invalid or expired access token"):
    body = gateway_envelope(
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        "3200",
        "AUTHENTICATION",
    )
    return json_response(
        body, 401, {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
    )


def forbidden(detail="The application is not authorized to access this company"):
    body = gateway_envelope(
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        detail,
        "3100",
        "SERVICE",
    )
    return json_response(body, 403)


def gateway_500():
    body = gateway_envelope(
        "message=InternalServerError; errorCode=003100; statusCode=500",
        "Internal Server Error",
        "3100",
        "SERVICE",
    )
    return json_response(body, 500)


def gateway_504():
    body = gateway_envelope(
        "message=GatewayTimeout; errorCode=003100; statusCode=504",
        "Gateway Timeout",
        "3100",
        "SERVICE",
    )
    return json_response(body, 504)


def throttled(fmt="xml"):
    if fmt == "json":
        body = gateway_envelope(
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.  Try again later",
            "3001",
            "SERVICE",
        )
        response = json_response(body, 429)
    else:
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{qbo_time()}">'
            '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
            "errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.  "
            "Try again later</Detail></Error></Fault></IntuitResponse>"
        )
        response = HttpResponse(xml, status=429, content_type="application/xml")
        response["intuit_tid"] = new_tid()
    return response
