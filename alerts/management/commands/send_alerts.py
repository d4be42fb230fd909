"""`manage.py send_alerts --digest|--immediate [--company ID] [--dry-run] [--force] [--json]`:
what beat's alert passes do, now (support's tool). --dry-run prints what would go and records
nothing; --force (with --digest) sends a digest now even when today's went out."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts import services
from finance.models import Company


class Command(BaseCommand):
    help = "Send the alert digest or the immediate alerts that are due (what beat does)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--digest", action="store_true", help="Daily digests that are due.")
        which.add_argument(
            "--immediate", action="store_true", help="Immediate alerts whose condition began."
        )
        parser.add_argument("--company", type=int, help="Only this company (its id).")
        parser.add_argument("--dry-run", action="store_true", help="Print, send nothing.")
        parser.add_argument(
            "--force", action="store_true", help="--digest: send one now, off schedule."
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        company_id = options["company"]
        if company_id is not None and not Company.objects.filter(pk=company_id).exists():
            raise CommandError(f"No company with id {company_id}.")
        if options["force"] and not options["digest"]:
            raise CommandError("--force goes with --digest.")
        if options["digest"]:
            results = services.digests_send_due(
                company_id=company_id, dry_run=options["dry_run"], force=options["force"]
            )
        else:
            results = services.immediate_check(company_id=company_id, dry_run=options["dry_run"])
        if options["as_json"]:
            self.stdout.write(json.dumps(results, indent=2, default=str))
            return
        verb = "would send" if options["dry_run"] else "sent"
        if not results:
            self.stdout.write("Nothing due.")
        for r in results:
            what = (
                f"digest {r['slot']}: {r['problems']} new problem(s) {r['by_type']}"
                if r["kind"] == "digest"
                else f"immediate {r['condition']}"
            )
            to = ", ".join(r["recipients"]) or "no subscriber"
            self.stdout.write(f"{r['company']}: {what} — {verb} to {to}")
