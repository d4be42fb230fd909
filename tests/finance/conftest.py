"""Finance test fixtures (shared users and company live in tests/conftest.py)."""

import pytest
from django.contrib.auth.models import Group, Permission, User

from finance.services import finance_settings_get
from sync.roles import ensure_roles


@pytest.fixture
def fin_settings(company):
    return finance_settings_get(company=company)


@pytest.fixture
def staff_finance_user(db):
    # Finance staff who could reach the admin: still not allowed in the QuickBooks ID area.
    ensure_roles(Group, Permission)  # transactional tests elsewhere flush the groups
    user = User.objects.create_user(username="fran", password="pw-fran", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user
