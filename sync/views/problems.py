"""Problem Sync and Waiting pages, row actions (htmx or plain POST), bulk jobs, detail drawer."""

import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from finance.models import Company, Invoice, SyncedRecord
from finance.registry import default_tab, model_for, record_type
from sync import selectors
from sync.forms import BulkForm, ProblemFilterForm
from sync.models import BulkJob, ProblemEvent
from sync.services import actions
from sync.views.access import check_viewer, current_company, get_record_for_user
from sync.views.present import TYPE_LABELS, TYPE_SINGULAR, present, record_label, trend_chart

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
ACTIONS: dict[str, tuple[Callable[..., SyncedRecord] | None, str]] = {
    # url action → (service, past tense for the toast)
    "resync": (actions.record_resync, "queued for re-sync"),
    "clear": (actions.record_clear, "cleared without sync"),
    "undo-clear": (actions.record_undo_clear, "put back on the problem list"),
    "mark-paid": (None, "marked paid without sync"),
    "overwrite": (actions.record_overwrite_quickbooks, "queued to overwrite QuickBooks' version"),
    "accept-void": (actions.invoice_accept_void, "voided in the TMS as in QuickBooks"),
    "send-new": (actions.record_send_again_as_new, "queued to be created again in QuickBooks"),
    "sync-now": (actions.record_sync_now, "queued to be sent to QuickBooks"),
}
SORT_COLUMNS = [
    ("doc", "Record"),
    ("customer", "Customer"),
    ("amount", "Amount"),
    ("since", "Since"),
    ("attempts", "Attempts"),
    ("last_try", "Last try"),
    ("next_retry", "Next retry"),
]


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _tab(request: HttpRequest) -> str:
    sync_type = request.GET.get("type", "")
    return sync_type if sync_type in TYPE_LABELS else default_tab()


def _sort_links(request: HttpRequest, sort: str) -> list[dict[str, str]]:
    links = []
    for key, label in SORT_COLUMNS:
        params = request.GET.copy()
        params.pop("page", None)
        active = sort.lstrip("-") == key
        params["sort"] = key if (active and sort.startswith("-")) else f"-{key}"
        arrow = ("▼" if sort.startswith("-") else "▲") if active else ""
        links.append({"key": key, "label": label, "query": params.urlencode(), "arrow": arrow})
    return links


@login_required
@require_GET
def problems(request: AuthenticatedHttpRequest) -> HttpResponse:
    can_write = check_viewer(request)
    company = current_company(request)
    sync_type = _tab(request)
    form = ProblemFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    sort = filters.get("sort") or "-since"
    rows_qs = selectors.problems_list(
        company=company,
        sync_type=sync_type,
        search=filters.get("q", ""),
        reason=filters.get("reason", ""),
        age=filters.get("age", ""),
        sort=sort,
    )
    page = selectors.KeysFirstPaginator(rows_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "can_write": can_write,
        "sync_type": sync_type,
        "type_label": TYPE_LABELS[sync_type],
        "tabs": _tabs(selectors.problem_counts(company=company), sync_type),
        "form": form,
        "page": page,
        "rows": [present(r) for r in page.object_list],
        "sort_links": _sort_links(request, sort),
        "resolved": _resolved(company),
        "chart": trend_chart(selectors.trend(company=company)),
        "query": _query_without_page(request),
    }
    return render(request, "sync/problems.html", context)


HOW_LABELS = {
    "resync": "Re-sync requested",
    "cleared": "Cleared without sync",
    "mark_paid": "Marked paid without sync",
    "synced": "Synced",
    "linked": "Linked",
    "changed": "Changed in the TMS",
    "qb_id_override": "Linked to an existing QuickBooks object",
    "qb_id_remove": "QuickBooks ID removed",
    "mapped": "Charge code mapped",
    "send_items": "Sent as an item",
    "new_company": "Reset for a new QuickBooks company",
    "type_off": "Sync of its type switched off",
}


def _resolved(company: Company) -> list[ProblemEvent]:
    events = selectors.recently_resolved(company=company)
    for event in events:
        event.label = record_label(event.record)
        event.type_label = TYPE_SINGULAR.get(event.record_type, event.record_type)
        event.how_label = HOW_LABELS.get(event.how, event.how or "Resolved")
    return events


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _tabs(counts: dict[str, int], active: str | None) -> list[dict[str, Any]]:
    return [
        {"type": t, "label": label, "count": counts.get(t, 0), "active": t == active}
        for t, label in TYPE_LABELS.items()
    ]


def _back(request: HttpRequest, sync_type: str) -> HttpResponse:
    target = request.POST.get("next") or request.headers.get("Referer", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(reverse("sync:problems") + f"?type={sync_type}")


@login_required
@require_POST
def record_action(
    request: AuthenticatedHttpRequest, sync_type: str, pk: int, action: str
) -> HttpResponse:
    record, _ = get_record_for_user(request, sync_type, pk, write=True)
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, done = ACTIONS[action]
    name = f"{TYPE_SINGULAR[sync_type]} {present(record).label}"
    error = None
    try:
        if action == "mark-paid":
            if not record_type(sync_type).payable_outside:
                raise Http404("Only invoices can be marked paid.")
            assert isinstance(record, Invoice), "only invoices are payable outside (registry)"
            record = actions.invoice_mark_paid_outside(invoice=record, user=request.user)
        else:
            assert service is not None, "only mark-paid has no service of its own"
            record = service(record=record, user=request.user)
    except actions.InvalidTransition as exc:
        error = str(exc)
    if not _is_htmx(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"{name} {done}.")
        return _back(request, sync_type)
    record.refresh_from_db()
    if request.POST.get("from") == "not_syncing":
        return render(
            request,
            "sync/_not_syncing_response.html",
            {
                "row": present(record) if record.sync_status == "skipped" else None,
                "can_write": True,
                "toast": error or f"{name} {done}.",
                "toast_level": "error" if error else "success",
            },
        )
    company = current_company(request)
    context = {
        "row": present(record) if record.sync_status == "problem" else None,
        "can_write": True,
        "sync_type": sync_type,
        "tabs": _tabs(selectors.problem_counts(company=company), request.POST.get("tab")),
        "toast": error or f"{name} {done}.",
        "toast_level": "error" if error else "success",
        "resolved": _resolved(company),
    }
    # An undo from the "recently resolved" list adds the row only to the tab it belongs to.
    tab = request.POST.get("tab")
    context["show_row"] = context["row"] is not None and (
        request.POST.get("from") != "resolved" or tab == sync_type
    )
    return render(request, "sync/_action_response.html", context)


@login_required
@require_GET
def record_detail(request: AuthenticatedHttpRequest, sync_type: str, pk: int) -> HttpResponse:
    record, can_write = get_record_for_user(request, sync_type, pk)
    preview, preview_error = None, None
    try:
        from sync.mappers import payload_preview

        preview = payload_preview(record)
    except Exception as exc:  # noqa: BLE001 - the drawer says why instead of failing
        preview_error = str(exc) or exc.__class__.__name__
    context = {
        "row": present(record),
        "record": record,
        "attempts": selectors.attempt_history(record=record),
        "preview_json": json.dumps(preview, indent=2, default=str, ensure_ascii=False)
        if preview
        else "",
        "preview_error": preview_error or "nothing to show",
        "can_write": can_write,
    }
    template = "sync/_detail.html" if _is_htmx(request) else "sync/detail.html"
    return render(request, template, context)


@login_required
@require_POST
def bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not check_viewer(request):
        raise PermissionDenied("You need the Finance role to change sync state.")
    form = BulkForm(request.POST)
    sync_type = request.POST.get("type", default_tab())
    if not form.is_valid():
        message = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        if _is_htmx(request):
            return render(request, "sync/_bulk_progress.html", {"error": message})
        messages.error(request, message)
        return _back(request, sync_type)
    data = form.cleaned_data
    company = current_company(request)
    # Only ids of this company go into the job.
    model_ids = set(
        model_for(data["type"])
        .objects.filter(company=company, pk__in=data["ids"])
        .values_list("pk", flat=True)
    )
    job = actions.bulk_start(
        action=data["action"],
        sync_type=data["type"],
        ids=[i for i in data["ids"] if i in model_ids],
        user=request.user,
    )
    if _is_htmx(request):
        return render(request, "sync/_bulk_progress.html", _progress_context(job))
    messages.info(request, f"{actions.BULK_ACTIONS[job.action]} started for {job.total} records.")
    return _back(request, sync_type)


def _progress_context(job: BulkJob) -> dict[str, Any]:
    job.refresh_from_db()
    return {
        "job": job,
        "action_label": actions.BULK_ACTIONS.get(job.action, job.action),
        "finished": job.percent >= 100 or job.finished_at is not None,
        "list_url": reverse("sync:problems") + f"?type={job.record_type}",
    }


@login_required
@require_GET
def bulk_progress(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    check_viewer(request)
    job = get_object_or_404(BulkJob, pk=job_id)
    context = _progress_context(job)
    if _is_htmx(request):
        return render(request, "sync/_bulk_progress.html", context)
    return render(request, "sync/bulk.html", context)


def _status_page(
    request: AuthenticatedHttpRequest, statuses: tuple[str, ...], template: str
) -> HttpResponse:
    can_write = check_viewer(request)
    company = current_company(request)
    sync_type = _tab(request)
    sort = request.GET.get("sort") or "age"
    qs = selectors.waiting_list(company=company, sync_type=sync_type, sort=sort, statuses=statuses)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "can_write": can_write,
        "sync_type": sync_type,
        "type_label": TYPE_LABELS[sync_type],
        "tabs": _tabs(selectors.waiting_counts(company=company, statuses=statuses), sync_type),
        "page": page,
        "rows": [present(r) for r in page.object_list],
        "query": _query_without_page(request),
    }
    return render(request, template, context)


@login_required
@require_GET
def waiting(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _status_page(request, selectors.WAITING_STATUSES, "sync/waiting.html")


@login_required
@require_GET
def not_syncing(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _status_page(request, selectors.NOT_SYNCING, "sync/not_syncing.html")
