"""Sign-in throttling (django-axes): failures count per username + IP, on the TMS login and the
Django admin login alike; a lock-out answers 429 with a plain sentence; Support unlocks it."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def _sign_in(client, user, password=None, url=LOGIN, **extra):
    data = {"username": user.username, "password": password or "pw-" + user.username}
    if url == ADMIN_LOGIN:
        data["next"] = "/admin/"
    return client.post(url, data, **extra)


def _fail_until_locked(client, user, url=LOGIN, **extra):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _sign_in(client, user, "wrong", url=url, **extra)
    return response


def _signed_in(client):
    return "_auth_user_id" in client.session


@pytest.mark.django_db
def test_it_refuses_the_right_password_after_the_failure_limit(client, finance_user):
    # The adversarial review's case: N wrong passwords, then the right one must not get in.
    _fail_until_locked(client, finance_user)
    response = _sign_in(client, finance_user)
    assert response.status_code == 429
    assert not _signed_in(client)


@pytest.mark.django_db
def test_it_explains_the_lock_out_in_a_plain_sentence(client, finance_user):
    # The person at the keyboard learns why, for how long and whom to ask; no stack trace.
    response = _fail_until_locked(client, finance_user)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    text = response.content.decode()
    assert response.status_code == 429
    assert f"locked after {settings.AXES_FAILURE_LIMIT} failed sign-ins" in text
    assert f"Try again in {minutes} minutes, or ask an administrator" in text
    assert "Traceback" not in text


@pytest.mark.django_db
def test_it_still_lets_another_user_in_from_the_same_ip(client, finance_user, support_user):
    # Policy username+IP: guessing one name from an office NAT must not lock the whole office.
    assert _fail_until_locked(client, finance_user).status_code == 429
    response = _sign_in(client, support_user)
    assert response.status_code == 302
    assert _signed_in(client)


@pytest.mark.django_db
def test_it_still_lets_the_same_user_in_from_another_ip(client, finance_user):
    # An attacker elsewhere guessing Fiona's password cannot lock Fiona out of her own desk.
    assert _fail_until_locked(client, finance_user, REMOTE_ADDR="203.0.113.9").status_code == 429
    response = _sign_in(client, finance_user, REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302


@pytest.mark.django_db
def test_it_lets_the_right_password_in_after_the_cool_off(client, finance_user):
    # The lock lifts by itself: age the attempt past the cool-off instead of sleeping.
    assert _fail_until_locked(client, finance_user).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    response = _sign_in(client, finance_user)
    assert response.status_code == 302


@pytest.mark.django_db
def test_it_resets_the_failure_count_on_a_successful_login(client, finance_user):
    # Typos spread over a week must not add up to a lock-out once the user got in between.
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, finance_user, "wrong")
    assert _sign_in(client, finance_user).status_code == 302
    assert not AccessAttempt.objects.exists()
    client.logout()
    _sign_in(client, finance_user, "wrong")
    assert _sign_in(client, finance_user).status_code == 302


@pytest.mark.django_db
def test_it_throttles_the_admin_login_too(client, support_user):
    # /admin/login/ is the more valuable door (staff accounts); it must not be the open one.
    _fail_until_locked(client, support_user, url=ADMIN_LOGIN)
    response = _sign_in(client, support_user, url=ADMIN_LOGIN)
    assert response.status_code == 429
    assert "failed sign-ins" in response.content.decode()


@pytest.mark.django_db
def test_it_counts_admin_and_tms_failures_together(client, support_user):
    # Switching doors must not double the guesses: both logins share one counter.
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, support_user, "wrong", url=ADMIN_LOGIN)
    _sign_in(client, support_user, "wrong")
    assert _sign_in(client, support_user).status_code == 429


@pytest.mark.django_db
def test_it_ignores_a_forged_forwarded_for_without_the_proxy(client, finance_user):
    # With no proxy configured X-Forwarded-For is the client's own text: no fresh counter.
    _fail_until_locked(client, finance_user)
    response = _sign_in(client, finance_user, HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert response.status_code == 429


@pytest.mark.django_db
@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_it_counts_the_address_the_proxy_appended(client, finance_user):
    # Behind the proxy, REMOTE_ADDR is the proxy; the right-most X-Forwarded-For entry is the
    # client as the proxy saw it, and entries the client prepends cannot dodge the counter.
    _fail_until_locked(client, finance_user, HTTP_X_FORWARDED_FOR="203.0.113.9")
    forged = _sign_in(client, finance_user, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")
    other_client = _sign_in(client, finance_user, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert forged.status_code == 429
    assert other_client.status_code == 302


@pytest.mark.django_db
def test_it_lets_support_unlock_in_admin(client, finance_user, support_user):
    # Support (group "Support", staff) sees the lock-out under Axes and deletes it to unlock.
    assert _fail_until_locked(client, finance_user).status_code == 429
    attempt = AccessAttempt.objects.get(username=finance_user.username)
    support = client.__class__()
    support.force_login(support_user)
    assert support.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200
    support.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert _sign_in(client, finance_user).status_code == 302


@pytest.mark.django_db
def test_it_keeps_the_test_clients_logins_working(client, finance_user):
    # The suite logs in with force_login; client.login works too when handed a request,
    # which AxesStandaloneBackend requires.
    client.force_login(finance_user)
    assert _signed_in(client)
    client.logout()
    password = "pw-" + finance_user.username
    assert client.login(request=HttpRequest(), username=finance_user.username, password=password)
