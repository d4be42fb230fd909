"""Sign-in of QuickBooks sandbox users, asked before the consent page and the UI (like Intuit).

The signed-in user lives in the session under SESSION_KEY, a key of its own: Django's auth
user is a TMS user, and a TMS user signed into the app is not signed into QuickBooks. The
session also holds an HMAC of the user's password hash, so setting a new password
(`qbo_sandbox create-user` again) signs every other browser out, as Django does for its users.
"""

import functools
from urllib.parse import unquote, urlencode, urlsplit

from django import forms
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .models import SandboxUser

SESSION_KEY = "_qbo_sandbox_user"
_HMAC_SALT = "qbo_sandbox.signin"


def _password_hmac(user):
    return salted_hmac(_HMAC_SALT, user.password, algorithm="sha256").hexdigest()


def current_user(request) -> SandboxUser | None:
    """The sandbox user signed in on this session, or None (also after a password change)."""
    stored = request.session.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    user = SandboxUser.objects.filter(pk=stored.get("id")).first()
    if user is None or not constant_time_compare(stored.get("hash", ""), _password_hmac(user)):
        return None
    return user


def safe_next(request, value) -> str:
    """`value` when it is a path of this emulator, else the emulator's home: never another
    site (https://evil.example, //evil.example, /\\evil.example) nor the rest of this one."""
    home = reverse("qbo_sandbox:home")
    if not value or "\\" in value or any(ord(c) < 33 for c in value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(home):
        return home
    # Browsers resolve dot segments (%2e too): /qbo-sandbox/../admin/ is /admin/.
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return home
    if not url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()}):
        return home
    if parts.path == reverse("qbo_sandbox:signin"):
        return home
    return value


def redirect_to_signin(request, next_url=None):
    """To the sign-in page, coming back to `next_url`, or to this page for a GET. A POST has no
    page to come back to: the page that sent it (Referer), when it is one of ours."""
    if next_url is None:
        if request.method in ("GET", "HEAD"):
            next_url = request.get_full_path()
        else:
            referer = urlsplit(request.META.get("HTTP_REFERER", ""))
            same_host = referer.netloc == request.get_host()
            next_url = referer.path + (f"?{referer.query}" if referer.query else "")
            next_url = next_url if same_host else ""
    next_url = safe_next(request, next_url)
    return redirect(reverse("qbo_sandbox:signin") + "?" + urlencode({"next": next_url}))


def signin_required(view):
    """Views of a QuickBooks user: signed out → the sign-in page; signed in →
    `request.sandbox_user` is set (the templates show it)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = current_user(request)
        if user is None:
            return redirect_to_signin(request)
        request.sandbox_user = user
        return view(request, *args, **kwargs)

    return wrapper


class SignInForm(forms.Form):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(strip=False, widget=forms.PasswordInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)


@require_http_methods(["GET", "POST"])
def signin(request):
    if request.method == "GET":
        form = SignInForm(initial={"next": request.GET.get("next", "")})
        return render(request, "qbo_sandbox/signin.html", {"form": form})
    form = SignInForm(request.POST)
    user = None
    if form.is_valid():
        user = services.user_authenticate(
            email=form.cleaned_data["email"], password=form.cleaned_data["password"]
        )
    if user is None:
        error = "Wrong email or password: no QuickBooks sandbox user matches them."
        if not form.is_valid():
            error = "Enter the email and password of a QuickBooks sandbox user."
        context = {"form": form, "error": error}
        return render(request, "qbo_sandbox/signin.html", context)
    # A new session key and CSRF token on sign-in (session fixation); the TMS login, if any,
    # stays: it belongs to the other application.
    request.session.cycle_key()
    request.session[SESSION_KEY] = {"id": user.pk, "hash": _password_hmac(user)}
    rotate_token(request)
    return redirect(safe_next(request, form.cleaned_data.get("next", "")))


@require_POST
def signout(request):
    """Sign out of the emulator only (the TMS login stays), then offer the sign-in page again,
    coming back where the user was: "sign in as another user"."""
    request.session.pop(SESSION_KEY, None)
    return redirect_to_signin(request, next_url=request.POST.get("next", ""))
