"""Request types for the type checker: who is signed in behind the login and admin gates.

Django types `request.user` as `User | AnonymousUser`; the services want the person (they
write audit rows naming them). Views behind @login_required annotate their request as
`AuthenticatedHttpRequest` (django-stubs' documented pattern); admin methods, whose signatures
Django fixes, ask `staff_user(request)`.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """What @login_required lets through. Only an annotation: Django never builds one."""

    user: User


def staff_user(request: HttpRequest) -> User:
    """The person using the admin: admin_site.admin_view lets only signed-in staff in."""
    user = request.user
    assert isinstance(user, User), "the admin serves signed-in staff only"
    return user
