"""`manage.py alerts_subscribe USERNAME [--company NAME] [--off]`: opt a member in to (or out
of) the digest and immediate alerts of one tenant, or of every tenant they are a member of
(`make demo` opts the demo's finance user in)."""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts import selectors, services
from finance.models import Company


class Command(BaseCommand):
    help = "Opt a user in to (or --off out of) a tenant's alerts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--company", default="", help="Tenant name (default: all theirs).")
        parser.add_argument("--off", action="store_true", help="Opt out instead.")

    def handle(self, *args: Any, username: str, company: str, off: bool, **options: Any) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        companies = Company.objects.order_by("name")
        if company:
            companies = companies.filter(name=company)
            if not companies.exists():
                raise CommandError(f"No company named {company!r}.")
        done = []
        for tenant in companies:
            if not selectors.is_member(user, tenant):
                if company:
                    raise CommandError(f"{username} is not a member of {tenant}.")
                continue
            try:
                services.subscription_set(
                    user=user, company=tenant, digest=not off, immediate=not off
                )
            except PermissionDenied as exc:
                raise CommandError(str(exc)) from exc
            done.append(tenant.name)
        state = "off" if off else "on"
        self.stdout.write(f"Alerts {state} for {username}: {', '.join(done) or 'no company'}.")
