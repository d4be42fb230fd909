"""Intuit OAuth 2.0 emulation: discovery, consent, token, revoke, jwks, userinfo."""

import base64
import binascii
import datetime as dt
import json
import secrets
import time
import uuid
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services, signin
from .models import AuthCode, SandboxApp, SigningKey, Token

KNOWN_SCOPES = {
    "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment", "openid", "profile",
    "email", "phone", "address",
}  # fmt: skip
CODE_SECONDS = 300
# What the consent page's forms send back; a signed-out POST returns to the page they make.
CONSENT_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state")


def _abs(request, name):
    return request.build_absolute_uri(reverse(f"qbo_sandbox:{name}"))


def issuer(request):
    return _abs(request, "discovery").rsplit("/.well-known", 1)[0] + "/op/v1"


@require_GET
def discovery(request):
    return JsonResponse(
        {
            "issuer": issuer(request),
            "authorization_endpoint": _abs(request, "authorize"),
            "token_endpoint": _abs(request, "token"),
            "userinfo_endpoint": _abs(request, "userinfo"),
            "revocation_endpoint": _abs(request, "revoke"),
            "jwks_uri": _abs(request, "jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": sorted(KNOWN_SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
    )


def _error_page(request, message, status=400):
    return render(request, "qbo_sandbox/oauth_error.html", {"message": message}, status=status)


def _redirect(uri, params):
    sep = "&" if "?" in uri else "?"
    response = HttpResponse(status=302)
    response["Location"] = uri + sep + urlencode(params)
    return response


@require_http_methods(["GET", "POST"])
def authorize(request):
    params = request.GET if request.method == "GET" else request.POST
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    state = params.get("state", "")
    app = SandboxApp.objects.filter(client_id=client_id).first()
    if app is None:
        return _error_page(request, "The client_id is not valid: no app with this client id.")
    if redirect_uri not in app.redirect_uris:
        return _error_page(
            request,
            "The redirect_uri query parameter value is invalid. Make sure it is listed in the "
            "Redirect URIs section on your app's keys tab and matches it exactly.",
        )
    if params.get("response_type", "code") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
    scopes = params.get("scope", "").split()
    if not scopes or any(s not in KNOWN_SCOPES for s in scopes):
        return _redirect(redirect_uri, {"error": "invalid_scope", "state": state})
    # Like Intuit: the request is checked first (an error page or a redirect needs no user),
    # then the QuickBooks user signs in and comes back to this very URL; a POST from a session
    # signed out meanwhile comes back to the consent page its form was on.
    user = signin.current_user(request)
    if user is None:
        if request.method == "GET":
            return signin.redirect_to_signin(request)
        query = {k: params[k] for k in CONSENT_PARAMS if k in params}
        return signin.redirect_to_signin(
            request, next_url=reverse("qbo_sandbox:authorize") + "?" + urlencode(query)
        )
    request.sandbox_user = user
    companies = services.user_companies(user=user)
    if request.method == "GET":
        context = {
            "app": app,
            "companies": companies,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": " ".join(scopes),
            "response_type": "code",
        }
        return render(request, "qbo_sandbox/consent.html", context)
    if params.get("action") != "connect":
        return _redirect(redirect_uri, {"error": "access_denied", "state": state})
    realm_id = params.get("realm_id", "")
    if not realm_id:
        return _error_page(request, "Choose a company to connect.")
    company = companies.filter(realm_id=realm_id).first()
    if company is None:
        return _error_page(
            request, f"{user.email} has no access to QuickBooks company {realm_id}.", status=403
        )
    code = AuthCode.objects.create(
        code="AB11" + secrets.token_urlsafe(30),
        app=app,
        company=company,
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        expires_at=timezone.now() + dt.timedelta(seconds=CODE_SECONDS),
    )
    return _redirect(redirect_uri, {"code": code.code, "state": state, "realmId": company.realm_id})


def _json(body, status):
    response = HttpResponse(
        json.dumps(body), status=status, content_type="application/json;charset=utf-8"
    )
    response["intuit_tid"] = str(uuid.uuid4())
    return response


def _client(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    client_id = client_secret = None
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, client_secret = decoded.partition(":")
    else:
        client_id = request.POST.get("client_id")
        client_secret = request.POST.get("client_secret")
    app = SandboxApp.objects.filter(client_id=client_id or "").first()
    if app is None or not secrets.compare_digest(app.client_secret, client_secret or ""):
        return None
    return app


@csrf_exempt
@require_POST
def token(request):
    app = _client(request)
    if app is None:
        return _json({"error": "invalid_client"}, 401)
    grant = request.POST.get("grant_type")
    if grant == "authorization_code":
        issued = _grant_code(request, app)
    elif grant == "refresh_token":
        issued = _grant_refresh(request, app)
    else:
        return _json({"error": "unsupported_grant_type"}, 400)
    if issued is None:
        return _json({"error": "invalid_grant"}, 400)
    payload = services.token_payload(issued)
    body = {
        "x_refresh_token_expires_in": payload["x_refresh_token_expires_in"],
        "refresh_token": payload["refresh_token"],
        "access_token": payload["access_token"],
        "token_type": "bearer",
        "expires_in": payload["expires_in"],
    }
    if request.META.get("HTTP_X_INCLUDE_REFRESH_TOKEN_HARD_EXPIRES_IN", "").lower() == "true":
        body["x_refresh_token_hard_expires_in"] = services.token_hard_expires_in(issued)
    if "openid" in issued.scope.split():
        body["id_token"] = id_token(request, app, issued.company)
    return _json(body, 200)


def _grant_code(request, app):
    code = request.POST.get("code", "")
    now = timezone.now()
    with transaction.atomic():
        grant = AuthCode.objects.select_for_update().filter(code=code, app=app).first()
        if (
            grant is None
            or grant.used
            or grant.expires_at <= now
            or grant.redirect_uri != request.POST.get("redirect_uri", "")
        ):
            return None
        grant.used = True
        grant.save(update_fields=["used"])
        return services.token_create(app=app, company=grant.company, scope=grant.scope)


def _grant_refresh(request, app):
    value = request.POST.get("refresh_token", "")
    now = timezone.now()
    with transaction.atomic():
        old = Token.objects.select_for_update().filter(refresh_token=value, app=app).first()
        if old is None or _refresh_dead(old, now):
            return None
        if old.rotated_at is None:
            new = services.token_create(
                app=app,
                company=old.company,
                scope=old.scope,
                hard_expires_at=services.token_hard_expires_at(old),  # the grant's, not reset
            )
            old.rotated_at = now
            old.replaced_by = new
            old.save(update_fields=["rotated_at", "replaced_by"])
            return new
        grace = dt.timedelta(seconds=services.refresh_grace_seconds())
        successor = old.replaced_by
        if successor is not None and not _refresh_dead(successor, now):
            if now - old.rotated_at <= grace:
                return successor  # a racing refresh gets the same new pair
        return None


def _refresh_dead(token, now):
    """Revoked, past its rolling expiry, or past the grant's hard expiry (invalid_grant)."""
    return (
        token.revoked
        or token.refresh_expires_at <= now
        or services.token_hard_expires_at(token) <= now
    )


@csrf_exempt
@require_POST
def revoke(request):
    app = _client(request)
    if app is None:
        return _json({"error": "invalid_client"}, 401)
    try:
        value = json.loads(request.body or b"{}").get("token", "")
    except (ValueError, AttributeError):
        value = request.POST.get("token", "")
    with transaction.atomic():
        found = (
            Token.objects.select_for_update()
            .filter(app=app, revoked=False)
            .filter(refresh_token=value)
            .first()
            or Token.objects.select_for_update()
            .filter(app=app, revoked=False, access_token=value)
            .first()
        )
        if found is None:
            return HttpResponse(status=400)
        # Revoking disconnects the app from the company: every token of the pair dies.
        Token.objects.filter(app=app, company=found.company).update(revoked=True)
    return HttpResponse(status=200)


def bearer_token(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


def token_is_live(token, now=None):
    now = now or timezone.now()
    company = token.company
    if token.revoked or token.access_expires_at <= now:
        return False
    if company.tokens_expired_before and token.created <= company.tokens_expired_before:
        return False
    if company.expire_tokens_every_seconds:
        if token.created + dt.timedelta(seconds=company.expire_tokens_every_seconds) <= now:
            return False
    return True


@require_GET
def userinfo(request):
    value = bearer_token(request)
    found = Token.objects.select_related("company").filter(access_token=value or "").first()
    if found is None or not token_is_live(found):
        return _json({"error": "invalid_token"}, 401)
    return JsonResponse(
        {
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"qbo-sandbox:{found.company.realm_id}")),
            "givenName": "Sandbox",
            "familyName": "User",
            "email": "sandbox.user@example.com",
            "emailVerified": True,
        }
    )


# --- id_token (RS256) -------------------------------------------------------------------


def signing_key():
    key = SigningKey.objects.order_by("pk").first()
    if key is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        SigningKey.objects.get_or_create(
            kid="SBX" + secrets.token_hex(6).upper(), defaults={"private_pem": pem}
        )
        key = SigningKey.objects.order_by("pk").first()
    return key


@require_GET
def jwks(request):
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = signing_key()
    private = serialization.load_pem_private_key(key.private_pem.encode("ascii"), password=None)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": key.kid, "use": "sig", "alg": "RS256"})
    return JsonResponse({"keys": [jwk]})


def id_token(request, app, company):
    """RS256 id_token whose header/payload segments avoid '-' and '_' (intuit-oauth decodes
    them with standard base64)."""
    import jwt

    key = signing_key()
    now = int(time.time())
    for attempt in range(200):
        payload = {
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"qbo-sandbox:{company.realm_id}")),
            "aud": [app.client_id],
            "realmid": company.realm_id,
            "auth_time": now - attempt,
            "iss": issuer(request),
            "exp": now + 3600,
            "iat": now,
        }
        encoded = jwt.encode(payload, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
        head, body, _ = encoded.split(".")
        if not any(c in head + body for c in "-_"):
            return encoded
    return encoded
