import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count

from finance.registry import SYNC_ORDER, SYNCED_MODELS


class Command(BaseCommand):
    help = "Counts of records per type and sync status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        counts: dict[str, dict[str, int]] = {}
        for sync_type in SYNC_ORDER:
            rows = SYNCED_MODELS[sync_type].objects.values("sync_status").annotate(n=Count("id"))
            counts[sync_type] = {row["sync_status"]: row["n"] for row in rows}
        if options["json"]:
            self.stdout.write(json.dumps(counts, indent=2, sort_keys=True))
            return
        for sync_type, by_status in counts.items():
            detail = ", ".join(f"{k}={v}" for k, v in sorted(by_status.items())) or "none"
            self.stdout.write(f"{sync_type:<11} {detail}")
