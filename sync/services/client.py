"""The client factory: python-quickbooks + intuit-oauth, with our tokens, pacing and faults.

No hand-written HTTP for anything the libraries cover. We subclass python-quickbooks only to
point it at the configured API, pass a timeout, pace requests, and keep the HTTP status (the
library turns gateway errors into a generic code-10000 exception, qbo-api.md).
"""

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from sync.models import QuickBooksConnection
from sync.services import ratelimit, usage
from sync.services.locks import single_flight

logger = logging.getLogger(__name__)
# A QuickBooks entity as JSON: a body we send, or an object QuickBooks answers with.
QboObject = dict[str, Any]

API_URLS = {
    "sandbox": "https://sandbox-quickbooks.api.intuit.com/v3",
    "production": "https://quickbooks.api.intuit.com/v3",
}


def environment_for_auth() -> str:
    """intuit-oauth's `environment`: Intuit's name, or the emulator's discovery document URL."""
    if settings.QBO_ENVIRONMENT == "local":
        return f"{settings.QBO_LOCAL_BASE_URL}/.well-known/openid_configuration"
    return settings.QBO_ENVIRONMENT


def api_base_url() -> str:
    if settings.QBO_ENVIRONMENT == "local":
        return f"{settings.QBO_LOCAL_BASE_URL}/v3"
    return API_URLS[settings.QBO_ENVIRONMENT]


_threads = threading.local()


# Intuit reports the grant's hard expiry (≤ 5 years from consent, since Nov 2025) only when the
# token request asks for it. intuit-oauth 1.2.7 sends this header; python-quickbooks 0.9.12 pins
# 1.2.6, which does not, so TimedAuthClient adds it.
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
# Keys of a token answer that 1.2.6's set_attributes copies onto the client and that our
# columns are computed from.
_ANSWER_FIELDS = ("expires_in", "x_refresh_token_expires_in", "x_refresh_token_hard_expires_in")


class TimedAuthClient(AuthClient):
    """intuit-oauth sends its token, revoke and discovery requests through itself (it is a
    requests.Session) with no timeout: a silent token endpoint would hold a worker, and the
    refresh lock, forever.

    Token requests also ask for the hard expiry. intuit-oauth 1.2.6 copies every key of the
    token answer onto the client (utils.set_attributes), so the answer's
    `x_refresh_token_hard_expires_in` arrives as an attribute with no change to the library."""

    x_refresh_token_hard_expires_in: int | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", settings.QBO_REQUEST_TIMEOUT)
        # The discovery request runs inside __init__, before token_endpoint exists.
        if url == getattr(self, "token_endpoint", None):
            kwargs["headers"] = {**(kwargs.get("headers") or {}), HARD_EXPIRY_HEADER: "true"}
            # This client serves every tenant of its thread (auth_client()): what a previous
            # answer left must not pass for this answer's, if this one lacks a field.
            for name in _ANSWER_FIELDS:
                setattr(self, name, None)
        return super().request(method, url, **kwargs)


def auth_client() -> AuthClient:
    """One AuthClient per thread and configuration (its constructor fetches discovery)."""
    key = (
        environment_for_auth(),
        settings.QBO_CLIENT_ID,
        settings.QBO_CLIENT_SECRET,
        settings.QBO_REDIRECT_URI,
    )
    cache = getattr(_threads, "auth_clients", None)
    if cache is None:
        cache = _threads.auth_clients = {}
    client = cache.get(key)
    if client is None:
        client = TimedAuthClient(key[1], key[2], key[3], key[0])
        cache[key] = client
    client.access_token = None
    client.refresh_token = None
    client.realm_id = None
    return client


# --- errors ----------------------------------------------------------------------------


@dataclass
class QboError(Exception):
    """A failed call, classified. `kind` decides the state machine move (engine.settle)."""

    kind: str  # throttle | transient | auth | reconnect | permission | stale | duplicate_name |
    # duplicate_doc | not_found | required | invalid_reference | validation | internal
    message: str
    code: str = ""
    http_status: int | None = None
    detail: str = ""
    ambiguous: bool = False  # the write may have happened
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.code} {self.message}".strip()


BUDGET_MESSAGE = "Waiting for this company's QuickBooks request budget"


class NeedsReconnect(Exception):
    """The refresh token is gone (invalid_grant): the connection waits for a human."""


class TransportFailure(Exception):
    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


FAULT_KINDS = {
    "5010": "stale",
    "6240": "duplicate_name",
    "6140": "duplicate_doc",
    "610": "not_found",
    "2020": "required",
    "2500": "invalid_reference",
    "2030": "invalid_reference",
    "2010": "validation",
    "3001": "throttle",
    "3100": "permission",
    "3200": "auth",
}


@dataclass(frozen=True)
class _Fault:
    """What the libraries raised, reduced to what decides its kind."""

    exc: Exception
    status: int | None
    code: str
    message: str
    detail: str
    retry_after: float | None
    write: bool


def _reads_refused(f: _Fault) -> QboError | None:
    """Intuit blocks CorePlus calls for the rest of the month once the app's allowance is spent
    (a 429 ThrottleExceeded whose detail names the limit): not a per-minute throttle, so the
    realm's writes must not pause for it."""
    text = (f.detail + " " + f.message).lower()
    if f.status == 429 and not f.write and ("coreplus" in text or "call limit" in text):
        return QboError(
            "reads_refused", "QuickBooks refused reads: the app's monthly allowance is spent",
            "3001", 429, f.detail, retry_after=f.retry_after,
        )  # fmt: skip
    return None


def _throttled(f: _Fault) -> QboError | None:
    if f.status == 429 or f.code == "3001" or "ThrottleExceeded" in f.detail + f.message:
        return QboError(
            "throttle", "QuickBooks throttled the request", "3001", 429, f.detail,
            retry_after=f.retry_after,
        )  # fmt: skip
    return None


def _refused_by_gateway(f: _Fault) -> QboError | None:
    if f.status == 401:
        return QboError("auth", "QuickBooks refused the access token", f.code, 401, f.detail)
    if f.status == 403:
        return QboError("permission", "QuickBooks refused access", f.code or "403", 403, f.detail)
    return None


def _server_trouble(f: _Fault) -> QboError | None:
    """5xx, SystemFault or an unreadable gateway body: the write may or may not have landed."""
    severe = f.code.isdigit() and int(f.code) >= 10000
    if (f.status or 0) < 500 and not severe:
        return None
    # python-quickbooks reports unreadable gateway bodies as a bare code 10000: show the HTTP
    # status instead; a real SystemFault (SevereException) keeps Intuit's 10000.
    generic = type(f.exc) is QuickbooksException and f.code in {"", "10000"}
    code = str(f.status) if f.status and (generic or not f.code) else f.code
    return QboError("transient", f.message, code, f.status, f.detail, ambiguous=f.write)


def _by_code(f: _Fault) -> QboError:
    kind = FAULT_KINDS.get(f.code)
    if kind is None and f.code.isdigit() and 2000 <= int(f.code) < 5000:
        kind = "validation"
    if kind is None and isinstance(f.exc, AuthorizationException):
        kind = "auth"
    if kind is None:
        kind = "validation" if f.status == 400 else "internal"
    return QboError(kind, f.message, f.code, f.status, f.detail)


# Read in order: the HTTP status first (gateway errors carry no Intuit code), then the code.
_CLASSIFIERS = (_reads_refused, _throttled, _refused_by_gateway, _server_trouble)


def classify(
    exc: Exception, status: int | None, headers: Mapping[str, str] | None = None, *, write: bool
) -> QboError:
    """Turn whatever the libraries raised into one QboError (by HTTP status, then code)."""
    if isinstance(exc, TransportFailure):
        return QboError(
            "transient", str(exc), http_status=None, ambiguous=write and exc.sent, code="network"
        )
    retry_after = None
    if headers and headers.get("Retry-After", "").isdigit():
        retry_after = float(headers["Retry-After"])
    fault = _Fault(
        exc=exc,
        status=status,
        code=str(getattr(exc, "error_code", "") or ""),
        message=getattr(exc, "message", None) or str(exc),
        detail=str(getattr(exc, "detail", "") or ""),
        retry_after=retry_after,
        write=write,
    )
    for classifier in _CLASSIFIERS:
        error = classifier(fault)
        if error is not None:
            return error
    return _by_code(fault)


# --- the python-quickbooks client -------------------------------------------------------


class PortproQuickBooks(QuickBooks):
    """python-quickbooks pointed at our API base, paced, with a timeout and the HTTP status."""

    base_url = ""
    last_response: requests.Response | None = None
    # Set by a caller that already took this request's rate-limit slot (batch.py overflow).
    prepaid = False

    @property
    def api_url(self) -> str:
        return self.base_url

    # python-quickbooks' own signature: it always passes the headers as a dict.
    def process_request(
        self, request_type: str, url: str, headers: Any = "", params: Any = "", data: Any = ""
    ) -> requests.Response:
        if self.prepaid:
            self.prepaid = False
        else:
            ratelimit.take(self.company_id, "batch" if url.endswith("/batch") else "request")
        headers.update({"Authorization": "Bearer " + self.session.access_token})
        self.last_response = None
        try:
            response = self.session.request(
                request_type,
                url,
                headers=headers,
                params=params,
                data=data,
                timeout=settings.QBO_REQUEST_TIMEOUT,
            )
        except requests.ConnectTimeout as exc:
            raise TransportFailure("QuickBooks could not be reached", sent=False) from exc
        except requests.Timeout as exc:
            raise TransportFailure("QuickBooks did not answer in time", sent=True) from exc
        except requests.ConnectionError as exc:
            refused = "refused" in str(exc).lower() or "NewConnectionError" in repr(exc)
            raise TransportFailure("the connection to QuickBooks broke", sent=not refused) from exc
        self.last_response = response
        return response


def _build_client(connection: QuickBooksConnection) -> PortproQuickBooks:
    auth = auth_client()
    auth.access_token = connection.access_token
    auth.refresh_token = connection.refresh_token
    auth.realm_id = connection.realm_id
    client = PortproQuickBooks(
        auth_client=auth,
        refresh_token=connection.refresh_token,
        company_id=connection.realm_id,
        minorversion=settings.QBO_MINOR_VERSION,
    )
    client.base_url = api_base_url()
    return client


# --- tokens ------------------------------------------------------------------------------


def _hard_expiry(auth: AuthClient, now: datetime) -> datetime | None:
    """When the answer says the grant ends for good; None when it does not say."""
    seconds = getattr(auth, "x_refresh_token_hard_expires_in", None)
    try:
        return now + timedelta(seconds=int(seconds)) if seconds is not None else None
    except (TypeError, ValueError):
        logger.warning("unreadable x_refresh_token_hard_expires_in: %r", seconds)
        return None


def token_fields(auth: AuthClient, *, hard_expires_at: datetime | None = None) -> dict[str, Any]:
    """The columns a token answer fills (tokens, their expiry).

    `hard_expires_at` is the grant's hard expiry already known (a refresh of the same grant):
    kept when the answer does not report one, and the rolling expiry never passes it (no
    refresh extends a grant beyond its hard expiry)."""
    now = timezone.now()
    refresh_seconds = int(getattr(auth, "x_refresh_token_expires_in", None) or 8726400)
    refresh_expires_at = now + timedelta(seconds=refresh_seconds)
    fields: dict[str, Any] = {
        "access_token": auth.access_token,
        "refresh_token": auth.refresh_token,
        "access_token_expires_at": now + timedelta(seconds=int(auth.expires_in or 3600)),
    }
    hard = _hard_expiry(auth, now) or hard_expires_at
    if hard is not None:
        fields["refresh_token_hard_expires_at"] = hard
        refresh_expires_at = min(refresh_expires_at, hard)
    fields["refresh_token_expires_at"] = refresh_expires_at
    return fields


def store_tokens(connection: QuickBooksConnection, auth: AuthClient) -> None:
    """A new grant (consent): its hard expiry is the answer's, never the previous grant's."""
    connection.refresh_token_hard_expires_at = None
    for name, value in token_fields(auth).items():
        setattr(connection, name, value)
    connection.token_generation += 1


def _refresh_refused(exc: AuthClientError) -> bool:
    content = exc.content or b""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return exc.status_code in (400, 401) and "invalid_grant" in content


def refresh_tokens(*, connection_id: int, seen_generation: int) -> QuickBooksConnection:
    """Single-flight refresh: one worker refreshes, the others pick up its new tokens.

    The refresh token may rotate (the old one dies), so two refreshes at once would lose the
    connection: a cross-process lock (Redis, else a file lock) serialises them. No database
    transaction is open while Intuit answers: the new pair is saved by one conditional UPDATE
    right after the answer. A process killed between the two leaves the previous pair in the
    row; the previous refresh token still works for Intuit's grace period, so the next refresh
    recovers (tests/reliability/test_tokens.py kills a process at that point).
    """
    realm = QuickBooksConnection.objects.values_list("realm_id", flat=True).get(pk=connection_id)
    # The lock outlives one token request (its own timeout) but not much more: a holder
    # killed mid-refresh (Redis keeps its lock) delays the next refresh, never blocks it.
    hold = settings.QBO_REQUEST_TIMEOUT + 5
    with single_flight(f"refresh:{realm}", timeout=hold, wait=hold + 5):
        connection = QuickBooksConnection.objects.get(pk=connection_id)
        if connection.token_generation != seen_generation:
            return connection  # someone refreshed while we waited
        if connection.status != QuickBooksConnection.Status.CONNECTED:
            raise NeedsReconnect(connection.last_error or "QuickBooks is not connected")
        unchanged = QuickBooksConnection.objects.filter(
            pk=connection_id, token_generation=seen_generation
        )
        auth = auth_client()
        try:
            auth.refresh(refresh_token=connection.refresh_token)
        except AuthClientError as exc:
            if not _refresh_refused(exc):
                unchanged.update(last_error=f"Token refresh failed (HTTP {exc.status_code}).")
                raise QboError("transient", "token refresh failed", str(exc.status_code)) from exc
            message = "QuickBooks authorization expired or was revoked."
            ended = connection.refresh_token_hard_expires_at
            if ended is not None and ended <= timezone.now():
                message = (
                    "QuickBooks authorization reached its end date (Intuit ends every "
                    "authorization at most 5 years after consent). Reconnect to renew it."
                )
            # Only if nobody saved a newer pair meanwhile: then the refusal was for an old token.
            if unchanged.update(
                status=QuickBooksConnection.Status.NEEDS_RECONNECT,
                last_error=message,
                updated_at=timezone.now(),
            ):
                logger.warning("realm %s needs reconnecting", realm)
                raise NeedsReconnect(message) from exc
            return QuickBooksConnection.objects.get(pk=connection_id)
        except requests.RequestException as exc:
            unchanged.update(last_error="Token refresh failed: QuickBooks could not be reached.")
            raise QboError("transient", "token refresh failed: network") from exc
        unchanged.update(
            **token_fields(auth, hard_expires_at=connection.refresh_token_hard_expires_at),
            token_generation=F("token_generation") + 1,
            last_error="",
            updated_at=timezone.now(),
        )
        logger.info("refreshed tokens for realm %s", realm)
        return QuickBooksConnection.objects.get(pk=connection_id)


# --- the session engine code uses --------------------------------------------------------

# Intuit's Core calls (data in); every other call of the API is CorePlus (data out).
_CORE_METHODS = {"create_object", "update_object", "delete_object"}


class QuickBooksSession:
    """Calls for one connection: refresh once on 401, classify every failure as QboError."""

    def __init__(self, connection: QuickBooksConnection):
        if not connection.is_usable:
            raise NeedsReconnect("QuickBooks is not connected")
        self.connection = connection
        try:
            self.client = _build_client(connection)
        except requests.RequestException as exc:  # intuit-oauth's discovery, on first use
            raise QboError("transient", "QuickBooks could not be reached") from exc
        self.last_status: int | None = None
        self.last_duration_ms = 0
        # Objects this session already holds in their latest version (a CDC answer): a read of
        # one is answered from here, not bought again (reads are metered).
        self.known: dict[tuple[str, str], QboObject] = {}
        self.reads = 0  # the CorePlus calls this session was served (what a job spent)

    @property
    def realm(self) -> str:
        return self.connection.realm_id

    def _refresh(self) -> None:
        self.connection = refresh_tokens(
            connection_id=self.connection.pk, seen_generation=self.connection.token_generation
        )
        self.client = _build_client(self.connection)

    def _expiring(self) -> bool:
        expires = self.connection.access_token_expires_at
        return expires is not None and expires - timezone.now() < timedelta(seconds=60)

    def call(self, method: str, *args: Any, write: bool = False, **kwargs: Any) -> QboObject:
        if self._expiring():
            self._refresh()
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                result = getattr(self.client, method)(*args, **kwargs)
                self._note(started)
                self._count(method, write=write)
                return result
            except ratelimit.RateLimited as exc:
                # Nothing was sent: the record waits for the budget, the worker does not.
                self.last_status, self.last_duration_ms = None, 0
                raise QboError("throttle", BUDGET_MESSAGE, "budget", retry_after=exc.wait) from exc
            except (QuickbooksException, TransportFailure) as exc:
                self._note(started)
                response = self.client.last_response
                if response is not None and response.status_code not in (401, 429):
                    self._count(method, write=write)  # a fault QuickBooks served is metered
                error = classify(
                    exc,
                    response.status_code if response is not None else None,
                    response.headers if response is not None else None,
                    write=write,
                )
                if error.kind == "auth" and attempt == 1:
                    self._refresh()
                    continue
                if error.kind == "reads_refused":
                    pause = usage.pause_reads(detail=error.detail, retry_after=error.retry_after)
                    error.retry_after = max(60.0, (pause.retry_at - timezone.now()).total_seconds())
                if error.kind == "throttle":
                    # The records wait as long as the realm does.
                    error.retry_after = ratelimit.pause_after_throttle(
                        self.realm, error.retry_after
                    )
                raise error from exc
        raise AssertionError("unreachable")

    def _count(self, method: str, *, write: bool) -> None:
        reads = 0 if write or method in _CORE_METHODS else 1
        self.reads += reads
        usage.record_call(connection=self.connection, coreplus=reads, core=1 - reads)

    def _note(self, started: float) -> None:
        response = self.client.last_response
        self.last_status = response.status_code if response is not None else None
        self.last_duration_ms = int((time.monotonic() - started) * 1000)

    # Thin names for the operations the engine uses.
    def create(self, entity: str, body: QboObject, *, request_id: str) -> QboObject:
        result = self.call(
            "create_object", entity, json.dumps(body), request_id=request_id, write=True
        )
        return result[entity]

    def update(self, entity: str, body: QboObject, *, request_id: str) -> QboObject:
        result = self.call(
            "update_object", entity, json.dumps(body), request_id=request_id, write=True
        )
        return result[entity]

    def upload(self, metadata: QboObject, content: bytes, *, request_id: str) -> QboObject:
        """One file with its Attachable metadata (Intuit's multipart /upload, built by
        python-quickbooks). A refused file is a Fault inside the answer, under HTTP 200: raised
        as a QboError like any fault, `attachment_refused` when it is the file (type, size)."""
        result = self.call(
            "create_object",
            "Attachable",
            json.dumps(metadata),
            _file_bytes=content,
            request_id=request_id,
            write=True,
        )
        item = (result.get("AttachableResponse") or [{}])[0]
        if "Fault" in item:
            first = (item["Fault"].get("Error") or [{}])[0]
            exc = QuickbooksException(
                first.get("Message", "QuickBooks refused the file"),
                str(first.get("code", "")),
                first.get("Detail", ""),
            )
            error = classify(exc, 400, None, write=True)
            if error.kind in {"validation", "required"}:
                error.kind = "attachment_refused"
            raise error
        return item["Attachable"]

    def read(self, entity: str, qb_id: str) -> QboObject:
        qb_id = str(qb_id)
        if not (qb_id.isascii() and qb_id.isdigit()):  # it becomes part of the URL path
            raise QboError("validation", f"{qb_id[:40]!r} is not a QuickBooks id", "2030")
        if (entity, qb_id) in self.known:
            return self.known[entity, qb_id]
        return self.call("get_single_object", entity, qb_id)[entity]

    def query(self, sql: str) -> list[QboObject]:
        result = self.call("query", sql)
        response = result.get("QueryResponse", {})
        return next((v for v in response.values() if isinstance(v, list)), [])

    def batch(self, items: list[QboObject], *, request_id: str) -> list[QboObject]:
        url = f"{self.client.api_url}/company/{self.realm}/batch"
        body = json.dumps({"BatchItemRequest": items})
        result = self.call("post", url, body, request_id=request_id, write=True)
        return result.get("BatchItemResponse", [])

    def cdc(self, entities: list[str], changed_since: str) -> dict[str, list[QboObject]]:
        result = self.call("change_data_capture", ",".join(entities), changed_since)
        changes: dict[str, list[QboObject]] = {}
        for block in result.get("CDCResponse", [{}])[0].get("QueryResponse", []):
            for key, value in block.items():
                if isinstance(value, list):
                    changes.setdefault(key, []).extend(value)
        return changes


def session_for(connection: QuickBooksConnection) -> QuickBooksSession:
    return QuickBooksSession(connection)


def quote(value: str) -> str:
    """A string literal for QBO's query language."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
