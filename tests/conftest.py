"""Shared fixtures: a TMS company, users per role, and (in tests/sync) the live emulator."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from finance.services import company_get_default
from sync.roles import ensure_roles


@pytest.fixture
def company(db):
    return company_get_default()


def _user(username, *groups, **flags):
    # Transactional tests flush the tables, including the groups the migration created.
    ensure_roles(Group, Permission)
    user = User.objects.create_user(username=username, password="pw-" + username, **flags)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def finance_user(db):
    return _user("fiona", "Finance")


@pytest.fixture
def support_user(db):
    return _user("sam", "Support", is_staff=True)


@pytest.fixture
def outsider(db):
    return _user("olly")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "pw-root")
