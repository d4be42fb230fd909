import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from finance.models import Company
from finance.registry import SYNC_ORDER, SYNCED_MODELS
from finance.services import company_get


def company_option(name: str) -> Company:
    """--company NAME: the tenant of that exact name, or a clear error."""
    try:
        return company_get(name=name)
    except ValidationError as exc:
        raise CommandError(" ".join(exc.messages)) from exc


class Command(BaseCommand):
    help = "Counts of records per type and sync status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--company", default="", help="only this tenant (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        counts: dict[str, dict[str, int]] = {}
        for sync_type in SYNC_ORDER:
            records = SYNCED_MODELS[sync_type].objects.all()
            if options["company"]:
                records = records.filter(company=company_option(options["company"]))
            rows = records.values("sync_status").annotate(n=Count("id"))
            counts[sync_type] = {row["sync_status"]: row["n"] for row in rows}
        if options["json"]:
            self.stdout.write(json.dumps(counts, indent=2, sort_keys=True))
            return
        for sync_type, by_status in counts.items():
            detail = ", ".join(f"{k}={v}" for k, v in sorted(by_status.items())) or "none"
            self.stdout.write(f"{sync_type:<11} {detail}")
