"""One access helper per object kind (STYLE 10): every Problem Sync view starts with one."""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404

from finance.http import AuthenticatedHttpRequest
from finance.models import SyncedRecord
from finance.registry import SYNCED_MODELS
from finance.tenancy import current_company, may_write

RESOLVE_PERM = "sync.resolve_problems"
SETTINGS_PERM = "finance.change_financesettings"


__all__ = ["current_company", "check_viewer", "check_settings_editor", "get_record_for_user"]


def check_viewer(request: AuthenticatedHttpRequest) -> bool:
    """Pages: Finance (resolve_problems) or support staff may look. Returns the write flag."""
    user = request.user
    if not (user.has_perm(RESOLVE_PERM) or user.is_staff):
        raise PermissionDenied("You need the Finance role or staff access to see sync problems.")
    return user.has_perm(RESOLVE_PERM) and may_write(user, current_company(request))


def check_settings_editor(request: AuthenticatedHttpRequest) -> None:
    if not request.user.has_perm(SETTINGS_PERM):
        raise PermissionDenied("You need the Finance role to change QuickBooks settings.")


def get_record_for_user(
    request: AuthenticatedHttpRequest, sync_type: str, pk: int, *, write: bool = False
) -> tuple[SyncedRecord, bool]:
    """The record of this company, or 404; PermissionDenied when `write` and not allowed."""
    can_write = check_viewer(request)
    if write and not can_write:
        raise PermissionDenied("You need the Finance role to change sync state.")
    model = SYNCED_MODELS.get(sync_type)
    if model is None:
        raise Http404("No such record type.")
    try:
        record = model.objects.get(pk=pk, company=current_company(request))
    except ObjectDoesNotExist:  # the get above: this type's DoesNotExist
        raise Http404("No such record.") from None
    return record, can_write
