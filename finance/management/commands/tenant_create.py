"""`manage.py tenant_create --name NAME [--finance-user USER:PASSWORD] [--support-user USER:PASSWORD]`

A tenant (trucking company) with its finance settings and, optionally, its users and their roles.
Idempotent: run it again and the same tenant and users are there (passwords set as given).
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from finance.models import Membership
from finance.services import membership_ensure, tenant_ensure


def _credentials(value: str) -> tuple[str, str]:
    username, sep, password = value.partition(":")
    if not sep or not username or not password:
        raise CommandError(f"{value!r}: give USER:PASSWORD.")
    return username, password


class Command(BaseCommand):
    help = "Create a tenant (idempotent), with a finance and/or a support user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="The company's name.")
        parser.add_argument("--finance-user", default="", metavar="USER:PASSWORD")
        parser.add_argument("--support-user", default="", metavar="USER:PASSWORD")

    def handle(
        self, *args: Any, name: str, finance_user: str, support_user: str, **kw: Any
    ) -> None:
        try:
            company, created = tenant_ensure(name=name)
            self.stdout.write(
                f"{'Created' if created else 'Found'} company {company.name} (id {company.pk})"
            )
            for value, role in (
                (finance_user, Membership.Role.FINANCE),
                (support_user, Membership.Role.SUPPORT),
            ):
                if not value:
                    continue
                username, password = _credentials(value)
                user, new = membership_ensure(
                    company=company, username=username, password=password, role=role
                )
                self.stdout.write(f"{'Created' if new else 'Updated'} {role} user {user.username}")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
