"""Intuit's webhook: exempt from login and CSRF, never from the signature. Answers fast."""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sync.services.pull import MAX_WEBHOOK_BYTES, BadWebhook, webhook_receive

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_WEBHOOK_BYTES:
        logger.warning("webhook refused: body of %s bytes", length)
        return HttpResponse("payload too large", status=413)
    body = request.body
    try:
        webhook_receive(body=body, signature=request.headers.get("intuit-signature", ""))
    except PermissionError:
        logger.warning("webhook refused: bad signature from %s", request.META.get("REMOTE_ADDR"))
        return HttpResponseForbidden("invalid signature")
    except BadWebhook as exc:
        logger.warning("webhook refused: %s", exc)
        return HttpResponseBadRequest(f"malformed notification: {exc}")
    return HttpResponse("ok")
