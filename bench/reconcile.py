"""Section 10: what reconciliation costs in metered reads (CorePlus), and how long the report
takes, for a tenant with 1,000 invoices (scaled): the first fill of our copies, a nightly
refresh after a few changes in QuickBooks, and a month of nightly runs for 1,000 tenants."""

import time
from datetime import date, timedelta

from bench.api_usage import metered_reads, say


def bench_reconcile(wiring, results, *, scale=1.0):
    from django.conf import settings

    from bench import seed
    from finance.models import Invoice
    from sync.services import reconcile
    from sync.services.batch import push_all_now
    from sync.services.engine import SyncContext

    count = max(300, round(1_000 * scale))
    say(f"\n== 10. Reconciliation: a tenant with {count} invoices, first fill and nightly ==")
    company = seed.company("Reconciled Tenant")
    wiring.connect(company, "Reconciled Books", throttle_enabled=False)
    seed.push_set(company, customers=max(20, count // 20), invoices=count, tag="R")
    started = time.monotonic()
    push_all_now(company_id=company.pk)
    say(f"  pushed {count} invoices in {time.monotonic() - started:.0f}s")
    start, end = date(2026, 11, 1), date(2026, 11, 30)
    out = {"invoices": count}
    # A change feed overlaps the refresh before it by a minute (our clock and Intuit's differ):
    # the push is a day old by the first nightly run, not seconds.
    time.sleep(65)

    before = metered_reads(company)
    started = time.monotonic()
    rep, reads = reconcile.refresh_and_report(company=company, start=start, end=end)
    out["first_fill"] = {
        "reads": reads,
        "metered": metered_reads(company) - before,
        "seconds": round(time.monotonic() - started, 2),
        "documents": len(rep.lines),
        "differences": len(rep.differences),
    }
    say(
        f"  first fill: {reads} reads (dated queries, 1,000 a page) for {len(rep.lines)} "
        f"documents in {out['first_fill']['seconds']}s; {len(rep.differences)} differences"
    )

    # Someone changes five invoices in QuickBooks during the next day.
    session = SyncContext.for_company(company.pk).session
    changed = list(Invoice.objects.filter(company=company).order_by("pk")[:5])
    for invoice in changed:
        remote = session.read("Invoice", invoice.qb_id)
        line = next(x for x in remote["Line"] if x["DetailType"] == "SalesItemLineDetail")
        line["Amount"] = line["SalesItemLineDetail"]["UnitPrice"] = 1.0
        line["SalesItemLineDetail"]["Qty"] = 1
        session.update("Invoice", remote, request_id=f"bench-edit-{invoice.pk}")
    before = metered_reads(company)
    started = time.monotonic()
    rep, reads = reconcile.refresh_and_report(company=company, start=start, end=end)
    nightly_s = time.monotonic() - started
    started = time.monotonic()
    reconcile.report(company=company, start=start, end=end)
    report_s = time.monotonic() - started
    out["nightly"] = {
        "reads": reads,
        "metered": metered_reads(company) - before,
        "seconds": round(nightly_s, 2),
        "differences": len(rep.differences),
        "planted": len(changed),
        "report_seconds": round(report_s, 2),
    }
    say(
        f"  nightly after 5 changes in QuickBooks: {reads} read(s), {len(rep.differences)} "
        f"differences found (5 planted) in {nightly_s:.2f}s; the report alone "
        f"{report_s:.2f}s for {len(rep.lines)} documents"
    )
    # A month: the first fill once, then one nightly refresh a day (paged when a day brings
    # more than 1,000 changes, which a tenant of this size does not).
    per_tenant = out["first_fill"]["reads"] + 30 * out["nightly"]["reads"]
    tenants = 1000
    share = per_tenant * tenants / settings.QBO_COREPLUS_ALLOWANCE
    out["month"] = {
        "reads_per_tenant": per_tenant,
        "tenants": tenants,
        "share_of_allowance": round(share, 3),
        "period_days": (end - start + timedelta(days=1)).days,
    }
    say(
        f"  month: {per_tenant} reads per tenant (first fill + 30 nightly) × {tenants} tenants "
        f"= {share:.3f} of the {settings.QBO_COREPLUS_ALLOWANCE:,} allowance"
    )
    results["reconciliation"] = out
    return out
