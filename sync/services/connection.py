"""Connecting a TMS company to a QuickBooks company: OAuth, disconnect, reconnect."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from finance.models import Company, ManualAction
from finance.registry import RECORD_TYPES
from finance.syncstate import SyncStatus, move
from sync.models import QuickBooksConnection
from sync.services import enqueue
from sync.services.client import auth_client, store_tokens
from sync.services.locks import single_flight

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from intuitlib.client import AuthClient

logger = logging.getLogger(__name__)
RESET_SUFFIX = ".reset"


class ConnectError(ValidationError):
    pass


def _audit(
    connection: QuickBooksConnection,
    user: User | None,
    note: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    ManualAction.objects.create(
        kind=ManualAction.Kind.CONNECTION,
        record_type="connection",
        record_id=connection.pk,
        user=user,
        note=note[:500],
        before=before or {},
        after=after or {},
    )


def _snapshot(connection: QuickBooksConnection) -> dict[str, str]:
    return {
        "realm_id": connection.realm_id,
        "company_name": connection.company_name,
        "status": connection.status,
    }


def authorize_url(*, connection: QuickBooksConnection, reset_mappings: bool = False) -> str:
    """Where to send the user to grant access; the state ties the callback to this request."""
    state = secrets.token_urlsafe(24) + (RESET_SUFFIX if reset_mappings else "")
    connection.oauth_state = state
    connection.save(update_fields=["oauth_state", "updated_at"])
    return auth_client().get_authorization_url([Scopes.ACCOUNTING], state_token=state)


def mapped_record_count(connection: QuickBooksConnection) -> int:
    return sum(
        rt.model.objects.filter(company_id=connection.company_id).exclude(qb_id="").count()
        for rt in RECORD_TYPES.values()
    )


@transaction.atomic
def reset_mappings(*, connection: QuickBooksConnection, user: User | None) -> int:
    """A different QuickBooks company: every QB ID is meaningless there; sync all again (types
    that start unmapped, charge codes, wait for a person to map them again)."""
    total = 0
    for rt in RECORD_TYPES.values():
        linked = rt.model.objects.filter(company_id=connection.company_id).exclude(qb_id="")
        pks = list(linked.values_list("pk", flat=True))
        rt.model.objects.filter(pk__in=pks).update(
            qb_id="", qb_sync_token="", synced_version=0, create_uncertain=False
        )
        total += len(pks)
        target = SyncStatus.SKIPPED if rt.starts_unmapped else SyncStatus.PENDING
        move(
            rt.model.objects.filter(pk__in=pks),
            target,
            how="new_company",
            user=user,
            attempts=0,
            next_retry_at=None,
            problem_reason="",
            problem_since=None,
        )
    _audit(connection, user, f"Reset {total} QuickBooks IDs for a new company")
    return total


def realm_holder(realm_id: str, connection: QuickBooksConnection) -> Company | None:
    """The other tenant connected to this QuickBooks company, if any."""
    other = (
        QuickBooksConnection.objects.filter(realm_id=realm_id)
        .exclude(pk=connection.pk)
        .select_related("company")
        .first()
    )
    return other.company if other is not None else None


def complete_callback(
    *,
    connection: QuickBooksConnection,
    user: User | None,
    code: str = "",
    state: str = "",
    realm_id: str = "",
    error: str = "",
) -> QuickBooksConnection:
    """Intuit redirected back. Check the state, swap the code for tokens, store them.

    The calls to Intuit (code exchange, CompanyInfo, a revoke when refused) happen outside
    any database transaction; only the final check-and-store holds the row."""
    if error:
        _audit(connection, user, f"Connect refused: {error}")
        raise ConnectError(
            "QuickBooks did not grant access"
            + (" (you pressed Cancel)." if error == "access_denied" else f": {error}.")
        )
    expected = connection.oauth_state
    if not expected or not state or not secrets.compare_digest(state, expected):
        _audit(connection, user, "Connect refused: state mismatch")
        raise ConnectError(
            "This QuickBooks answer does not match a connect request from this page. "
            "Start again with the Connect button."
        )
    if not code or not realm_id:
        raise ConnectError("QuickBooks' answer is missing the code or company id. Try again.")
    auth = auth_client()
    try:
        auth.get_bearer_token(code, realm_id=realm_id)
    except AuthClientError as exc:
        logger.warning("code exchange failed: %s", exc.status_code)
        raise ConnectError(
            "QuickBooks refused the authorization code (it may have expired). Connect again."
        ) from exc
    holder = realm_holder(realm_id, connection)
    if holder is not None:
        _revoke_quietly(auth.refresh_token)  # the grant we will not use
        _audit(connection, user, f"Connect refused: realm {realm_id} belongs to {holder}")
        raise ConnectError(
            f"That QuickBooks company ({realm_id}) is connected to another company in this TMS "
            f"({holder}). One QuickBooks company serves one company here; nothing was changed."
        )
    company_name = _company_name(auth, realm_id)
    refused_realm = ""
    with transaction.atomic():
        connection = QuickBooksConnection.objects.select_for_update().get(pk=connection.pk)
        before = _snapshot(connection)
        switching = bool(connection.realm_id) and connection.realm_id != realm_id
        if switching and mapped_record_count(connection):
            if state.endswith(RESET_SUFFIX):
                reset_mappings(connection=connection, user=user)
            else:
                refused_realm = connection.realm_id
                connection.oauth_state = ""
                connection.save(update_fields=["oauth_state", "updated_at"])
        if not refused_realm:
            connection.realm_id = realm_id
            connection.company_name = company_name or connection.company_name
            connection.status = QuickBooksConnection.Status.CONNECTED
            connection.oauth_state = ""
            connection.connected_at = timezone.now()
            connection.connected_by = user
            connection.last_error = ""
            store_tokens(connection, auth)
            connection.save()
            _audit(connection, user, "Connected to QuickBooks", before, _snapshot(connection))
            # What waited for the connection goes now, not at the next tick of beat.
            enqueue.after_commit("sweep_due", what="records waiting for the connection")
    if refused_realm:
        _revoke_quietly(auth.refresh_token)  # the grant we will not use
        raise ConnectError(
            f"You chose a different QuickBooks company ({realm_id}) than the one this "
            f"TMS is linked to ({refused_realm}). Nothing was changed. To switch "
            "companies, use “Connect a different company”, which resets every "
            "QuickBooks ID."
        )
    return connection


def _company_name(auth: AuthClient, realm_id: str) -> str:
    """CompanyInfo's name, read through python-quickbooks (best effort)."""
    try:
        from sync.services.client import _build_client

        probe = QuickBooksConnection(realm_id=realm_id)
        probe.access_token, probe.refresh_token = auth.access_token, auth.refresh_token
        client = _build_client(probe)
        info = client.get_single_object("CompanyInfo", realm_id)
        return info.get("CompanyInfo", {}).get("CompanyName", "")
    except Exception:  # noqa: BLE001 - a name is nice to have, never a reason to fail
        return ""


def _revoke_quietly(token: str) -> bool:
    try:
        auth_client().revoke(token=token)
    except Exception:  # noqa: BLE001
        logger.info("revoke failed (token may already be gone)")
        return False
    return True


def disconnect(*, connection: QuickBooksConnection, user: User | None) -> QuickBooksConnection:
    """Revoke access; keep the realm and every QB ID so a reconnect carries on.

    Holds the refresh lock (not a database transaction) while Intuit revokes, so no worker
    rotates the token we are revoking; then one short transaction forgets the tokens. The
    returned connection's `revoke_confirmed` says whether Intuit confirmed the revoke."""
    with single_flight(f"refresh:{connection.realm_id}", timeout=60, wait=30):
        current = QuickBooksConnection.objects.get(pk=connection.pk)
        revoked = bool(current.refresh_token) and _revoke_quietly(current.refresh_token)
        with transaction.atomic():
            connection = QuickBooksConnection.objects.select_for_update().get(pk=connection.pk)
            before = _snapshot(connection)
            had_token = bool(connection.refresh_token)
            connection.status = QuickBooksConnection.Status.DISCONNECTED
            connection.access_token = ""
            connection.refresh_token = ""
            connection.access_token_expires_at = None
            connection.refresh_token_expires_at = None
            # The revoked grant's end date; the next consent brings its own.
            connection.refresh_token_hard_expires_at = None
            connection.token_generation += 1
            connection.save()
            note = "Disconnected from QuickBooks"
            if had_token and not revoked:
                note += " (QuickBooks did not confirm the revoke)"
            _audit(connection, user, note, before, _snapshot(connection))
    connection.revoke_confirmed = revoked or not had_token
    return connection


@transaction.atomic
def connect_with_tokens(
    *,
    connection: QuickBooksConnection,
    realm_id: str,
    access_token: str,
    refresh_token: str,
    expires_in: int = 3600,
    refresh_expires_in: int = 8726400,
    refresh_hard_expires_in: int | None = None,
    company_name: str = "",
    user: User | None = None,
    environment: str | None = None,
) -> QuickBooksConnection:
    """Store a token pair obtained outside the browser (connect_sandbox, tests, scripts).

    A new grant: its hard expiry is `refresh_hard_expires_in` (Intuit's
    x_refresh_token_hard_expires_in) or unknown, never the previous grant's."""
    connection = QuickBooksConnection.objects.select_for_update().get(pk=connection.pk)
    holder = realm_holder(realm_id, connection)
    if holder is not None:
        raise ConnectError(f"QuickBooks company {realm_id} is connected to {holder} already.")
    before = _snapshot(connection)
    now = timezone.now()
    connection.realm_id = realm_id
    connection.company_name = company_name or connection.company_name
    if environment:
        connection.environment = environment
    connection.access_token = access_token
    connection.refresh_token = refresh_token
    connection.access_token_expires_at = now + timedelta(seconds=expires_in)
    connection.refresh_token_expires_at = now + timedelta(seconds=refresh_expires_in)
    connection.refresh_token_hard_expires_at = None
    if refresh_hard_expires_in is not None:
        hard = now + timedelta(seconds=refresh_hard_expires_in)
        connection.refresh_token_hard_expires_at = hard
        connection.refresh_token_expires_at = min(connection.refresh_token_expires_at, hard)
    connection.token_generation += 1
    connection.status = QuickBooksConnection.Status.CONNECTED
    connection.connected_at = now
    connection.connected_by = user
    connection.last_error = ""
    connection.save()
    _audit(connection, user, "Connected to QuickBooks (tokens)", before, _snapshot(connection))
    return connection
