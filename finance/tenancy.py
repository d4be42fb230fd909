"""Which tenant (Company) a request works in, and whether the user may write there.

A user belongs to tenants through Membership, with a role in each. Support staff (is_staff) serve
every tenant. A user with no membership in a deployment of one tenant works in it, as before
tenants existed; with several tenants, a membership is required. The tenant chosen from the menu
is kept in the session; anything not allowed falls back to the user's first tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from finance.models import Company, Membership
from finance.services import company_get_default

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.http import HttpRequest

SESSION_KEY = "tenant_id"
# A request asks for its tenant several times (context processor, access check, view): the
# answer is kept on the request, for the tenant id the session held when it was worked out.
_MEMO = "_portpro_tenant"


def companies_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Company]:
    """The tenants this user may work in, by name."""
    if not getattr(user, "is_authenticated", False):
        return Company.objects.none()
    if not Company.objects.exists():
        company_get_default()  # a fresh deployment: its one tenant, made on first use
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return Company.objects.order_by("name")
    mine = Company.objects.filter(memberships__user_id=getattr(user, "pk", 0)).order_by("name")
    if mine.exists() or Company.objects.count() != 1:
        return mine
    return Company.objects.order_by("name")  # one tenant, no memberships yet: as before tenants


def current_company(request: HttpRequest) -> Company:
    chosen = request.session.get(SESSION_KEY)
    memo = getattr(request, _MEMO, None)
    if memo is not None and memo[0] == chosen:
        return memo[1]
    company = _company_for(request, chosen)
    setattr(request, _MEMO, (chosen, company))
    return company


def _company_for(request: HttpRequest, chosen: int | None) -> Company:
    allowed = companies_for(request.user)
    company = allowed.filter(pk=chosen).first() if chosen else None
    # Everyone starts in the tenant they joined first (staff may work in every tenant).
    joined = allowed.filter(memberships__user_id=request.user.pk or 0)
    company = company or joined.order_by("memberships__id").first()
    company = company or allowed.first()
    if company is None:
        raise PermissionDenied("You are not a member of any company here: ask support to add you.")
    return company


def switch_company(request: HttpRequest, company_id: int) -> Company:
    company = companies_for(request.user).filter(pk=company_id).first()
    if company is None:
        raise PermissionDenied("You are not a member of that company.")
    request.session[SESSION_KEY] = company.pk
    return company


def role_in(user: AbstractBaseUser | AnonymousUser, company: Company) -> str:
    """The user's role in this tenant ("" when they have no membership there)."""
    pk = getattr(user, "pk", None)
    if pk is None:
        return ""
    membership = Membership.objects.filter(user_id=pk, company=company).first()
    return membership.role if membership else ""


def may_write(user: AbstractBaseUser | AnonymousUser, company: Company) -> bool:
    """A member with the Support role looks but does not change finance's sync state there;
    without memberships (one tenant), the Django groups alone decide, as before tenants."""
    return role_in(user, company) != Membership.Role.SUPPORT
