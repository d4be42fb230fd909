"""`manage.py pull_now [--company NAME]`: one pull pass (CDC since each tenant's cursor) now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sync.management.commands.sync_status import company_option
from sync.models import QuickBooksConnection
from sync.services.client import NeedsReconnect, QboError
from sync.services.pull import pull_changes


class Command(BaseCommand):
    help = (
        "Take in what changed in QuickBooks now (payments, bill payments, deletions), per tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", default="", help="only this tenant (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        connections = QuickBooksConnection.objects.filter(
            status=QuickBooksConnection.Status.CONNECTED
        ).select_related("company__finance_settings")
        if options["company"]:
            connections = connections.filter(company=company_option(options["company"]))
        failed = 0
        for connection in connections:
            try:
                counts = pull_changes(connection=connection)
            except (QboError, NeedsReconnect) as exc:
                failed += 1
                self.stderr.write(f"{connection.company}: pull failed: {exc}")
                continue
            summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no changes"
            self.stdout.write(f"{connection.company}: {summary}")
        if not connections:
            self.stdout.write("No connected tenant: nothing to pull.")
        if failed:
            raise CommandError(f"{failed} tenant(s) could not be pulled.")
