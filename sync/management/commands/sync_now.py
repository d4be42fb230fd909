import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from finance.registry import SYNC_ORDER
from sync.management.commands.sync_status import company_option
from sync.services.batch import push_all_now


class Command(BaseCommand):
    help = "Push everything due to QuickBooks now (in this process by default), with progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", choices=SYNC_ORDER, help="only this record type")
        parser.add_argument("--company", default="", help="only this tenant (default: all)")
        parser.add_argument(
            "--via-celery", action="store_true", help="hand the work to the Celery workers"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["via_celery"]:
            from sync.services import enqueue

            enqueue.sweep_now()
            self.stdout.write("Sweep queued for the Celery workers.")
            return

        def progress(name: str, done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            sys.stdout.write(f"\r{name:<10} [{bar}] {done}/{total}")
            if done == total:
                sys.stdout.write("\n")
            sys.stdout.flush()

        company_id = company_option(options["company"]).pk if options["company"] else None
        totals = push_all_now(sync_type=options["type"], progress=progress, company_id=company_id)
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(totals.items())) or "nothing due"
        self.stdout.write(f"Done. {summary}")
