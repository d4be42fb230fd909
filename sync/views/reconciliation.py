"""The reconciliation report: both books side by side for a period, differences first; CSV;
a refresh from QuickBooks on request (the only part that reads QuickBooks)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from sync.forms import ReconciliationForm
from sync.services import reconcile
from sync.services.client import NeedsReconnect, QboError
from sync.views.access import check_viewer, current_company

SHOWN_AGREEING = 500  # the rest is in the CSV


def _form(request: AuthenticatedHttpRequest) -> ReconciliationForm:
    start, end = reconcile.default_period()
    data = request.GET if request.method == "GET" else request.POST
    values = {
        "start": data.get("start") or start.isoformat(),
        "end": data.get("end") or end.isoformat(),
        "party": data.get("party", ""),
    }
    return ReconciliationForm(values)


@login_required
@require_GET
def page(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    can_write = check_viewer(request)
    company = current_company(request)
    form = _form(request)
    context: dict[str, object] = {"form": form, "can_write": can_write}
    if form.is_valid():
        rep = reconcile.report(
            company=company,
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
            party=form.cleaned_data["party"],
        )
        if request.GET.get("format") == "csv":
            response = StreamingHttpResponse(reconcile.report_csv(rep), content_type="text/csv")
            name = f"reconciliation-{rep.start}-{rep.end}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        agreeing = rep.agreeing
        context |= {
            "report": rep,
            "differences": rep.differences,
            "acknowledged": rep.acknowledged,
            "agreeing": agreeing[:SHOWN_AGREEING],
            "agreeing_hidden": max(0, len(agreeing) - SHOWN_AGREEING),
            "counts": [
                (kind, label, n)
                for (kind, label), n in zip(
                    reconcile.KINDS.items(), rep.counts().values(), strict=True
                )
            ],
            "totals": [(reconcile.TOTAL_LABELS[name], both) for name, both in rep.totals().items()],
            "query": urlencode(
                {k: str(v) for k, v in form.cleaned_data.items() if v not in ("", None)}
            ),
            "runs": reconcile.latest_runs(company=company),
            "reconcile_hour": settings.RECONCILE_HOUR,
        }
    return render(request, "sync/reconciliation.html", context)


@login_required
@require_POST
def refresh(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not check_viewer(request):
        raise PermissionDenied("You need the Finance role to read QuickBooks for a report.")
    company = current_company(request)
    form = _form(request)
    target = reverse("sync:reconciliation")
    if not form.is_valid():
        for error in form.non_field_errors() or ["The period is not valid."]:
            messages.error(request, str(error))
        return redirect(target)
    data = form.cleaned_data
    query = urlencode({k: str(v) for k, v in data.items() if v not in ("", None)})
    try:
        rep, reads = reconcile.refresh_and_report(
            company=company, start=data["start"], end=data["end"], party=data["party"]
        )
    except (QboError, NeedsReconnect) as exc:
        messages.error(
            request, f"QuickBooks could not be read; the report shows the last copy. {exc}"
        )
        return redirect(f"{target}?{query}")
    messages.success(
        request,
        f"QuickBooks read ({reads} metered {'read' if reads == 1 else 'reads'}): "
        f"{len(rep.differences)} differences in {len(rep.lines)} documents.",
    )
    return redirect(f"{target}?{query}")


@login_required
@require_POST
def acknowledge(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Accept a difference as it is, or (`reopen`) take that back; back to the same report."""
    if not check_viewer(request):
        raise PermissionDenied("You need the Finance role to acknowledge a difference.")
    company = current_company(request)
    key = request.POST.get("key", "")
    back = reverse("sync:reconciliation") + "?" + request.POST.get("query", "")[:500]
    if request.POST.get("reopen"):
        if reconcile.difference_reopen(company=company, key=key):
            messages.success(request, "The difference is open again.")
        return redirect(back)
    try:
        reconcile.difference_acknowledge(
            company=company, key=key, user=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, "Acknowledged: listed apart, and not raised again at night.")
    return redirect(back)
