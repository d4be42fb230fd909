"""Problem Sync and Waiting pages, row actions (htmx or plain POST), bulk jobs, detail drawer."""

import csv
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from finance.http import AuthenticatedHttpRequest
from finance.models import Company, SyncedRecord
from finance.registry import default_tab, model_for, record_type
from finance.syncstate import OWED, SyncStatus
from sync import selectors
from sync.forms import BulkForm, ProblemFilterForm
from sync.mappers import MAPPERS
from sync.models import BulkJob, ProblemEvent
from sync.services import actions, reconcile, usage
from sync.services.client import NeedsReconnect, QboError
from sync.services.drift import deleted, differences, last_write, voided
from sync.services.engine import SyncContext
from sync.views.access import check_viewer, current_company, get_record_for_user
from sync.views.present import TYPE_LABELS, TYPE_SINGULAR, present, record_label, trend_chart

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
ACTIONS: dict[str, tuple[Callable[..., SyncedRecord], str]] = {
    # url action → (service, past tense for the toast)
    "resync": (actions.record_resync, "queued for re-sync"),
    "clear": (actions.record_clear, "cleared without sync"),
    "undo-clear": (actions.record_undo_clear, "put back on the problem list"),
    "mark-paid": (actions.record_mark_paid_outside, "marked paid without sync"),
    "overwrite": (actions.record_overwrite_quickbooks, "queued to overwrite QuickBooks' version"),
    "accept-void": (actions.record_accept_void, "voided in the TMS as in QuickBooks"),
    "accept": (actions.record_accept_quickbooks, "changed in the TMS to QuickBooks' version"),
    "check": (actions.record_check_references, "checked against QuickBooks (see its row)"),
    "send-new": (actions.record_send_again_as_new, "queued to be created again in QuickBooks"),
    "sync-now": (actions.record_sync_now, "queued to be sent to QuickBooks"),
    "send-suffixed": (actions.vendor_send_with_suffix, "queued under its name with the suffix"),
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
    filters: dict[str, Any] = {}
    if form.is_bound:
        # A bad value (an unknown reason in an old link) drops that filter only, and says so:
        # cleaned_data keeps every valid field also when another is not.
        form.is_valid()
        filters = form.cleaned_data
    for name in form.errors:
        messages.warning(request, f"The {name} filter in the link is not valid; it was ignored.")
    sort = filters.get("sort") or "-since"
    if request.GET.get("format") == "csv":
        return _problems_csv(request, company, sync_type, filters, sort)
    rows_qs = _filtered_problems(company, sync_type, filters, sort)
    page = selectors.KeysFirstPaginator(rows_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "can_write": can_write,
        "sync_type": sync_type,
        "type_label": TYPE_LABELS[sync_type],
        "tabs": _tabs(selectors.problem_counts(company=company), sync_type),
        "form": form,
        "page": page,
        "rows": [present(r, can_admin=request.user.is_staff) for r in page.object_list],
        "sort_links": _sort_links(request, sort),
        "resolved": _resolved(company),
        "chart": trend_chart(selectors.trend(company=company)),
        "query": _query_without_page(request),
        "reconciled": reconcile.last_nightly(company=company),
    }
    return render(request, "sync/problems.html", context)


CSV_LIMIT = 50_000  # a spreadsheet's worth; the page says so when a filter would export more


def _problems_csv(
    request: AuthenticatedHttpRequest,
    company: Company,
    sync_type: str,
    filters: dict[str, Any],
    sort: str,
) -> HttpResponse:
    """The current view (tab, search, reason, age, sort) as CSV, every page of it."""
    rows = _filtered_problems(company, sync_type, filters, sort)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="problem-sync-{sync_type}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        ["Record", "Customer", "Amount", "Reason", "Message", "Intuit code", "Problem since",
         "Attempts", "QuickBooks ID", "TMS id"]
    )  # fmt: skip
    for record in rows[:CSV_LIMIT]:
        row = present(record, can_admin=False)
        writer.writerow(
            [_cell(row.label), _cell(getattr(row.customer, "display_name", "")),
             row.amount if row.amount is not None else "", row.reason.title,
             _cell(record.last_error_message), record.last_error_code,
             record.problem_since.isoformat() if record.problem_since else "",
             record.attempts, record.qb_id, record.pk]
        )  # fmt: skip
    return response


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: customer names are typed by
    # people, QuickBooks messages quote them. Prefix it so it stays text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _filtered_problems(
    company: Company, sync_type: str, filters: dict[str, Any], sort: str
) -> QuerySet[Any]:
    """The problem list as the page's filter form asks (the page, its CSV, select-all)."""
    return selectors.problems_list(
        company=company,
        sync_type=sync_type,
        search=filters.get("q", ""),
        reason=filters.get("reason", ""),
        age=filters.get("age", ""),
        sort=sort,
    )


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
        if action == "mark-paid" and not record_type(sync_type).payable_outside:
            raise Http404("Only invoices and bills can be marked paid.")
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
    listed_in = LIST_PAGES.get(request.POST.get("from", ""))
    if listed_in:  # a row of Not syncing or Resolved: it stays while it is still listed there
        statuses, row_template = listed_in
        list_context = {
            "row": present(record, can_admin=request.user.is_staff)
            if record.sync_status in statuses
            else None,
            "row_template": row_template,
            "can_write": True,
            "toast": error or f"{name} {done}.",
            "toast_level": "error" if error else "success",
        }
        return render(request, "sync/_list_action_response.html", list_context)
    company = current_company(request)
    context = {
        "row": present(record, can_admin=request.user.is_staff)
        if record.sync_status == "problem"
        else None,
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
        "row": present(record, can_admin=request.user.is_staff),
        "record": record,
        "comparison": _compare_with_quickbooks(record) if request.GET.get("compare") else None,
        "attempts": selectors.attempt_history(record=record),
        "preview_json": json.dumps(preview, indent=2, default=str, ensure_ascii=False)
        if preview
        else "",
        "preview_error": preview_error or "nothing to show",
        "can_write": can_write,
    }
    template = "sync/_detail.html" if _is_htmx(request) else "sync/detail.html"
    return render(request, template, context)


def _compare_with_quickbooks(record: SyncedRecord) -> dict[str, Any]:
    """QuickBooks' copy now, read on request (one metered read), beside what we last sent."""
    if not record.qb_id:
        return {"error": "Not in QuickBooks yet: nothing to compare."}
    try:
        session = SyncContext.for_company(record.company_id).session
        with usage.purpose("check"):
            current = session.read(MAPPERS[record.sync_type].entity, record.qb_id)
    except (QboError, NeedsReconnect) as exc:
        return {"error": f"QuickBooks could not be read: {exc}"}
    last = last_write(sync_type=record.sync_type, record_id=record.pk)
    return {
        "token": current.get("SyncToken", ""),
        "voided": voided(current),
        "deleted": deleted(current),
        "known": bool(last and last.payload),
        "sent_at": last.started_at if last else None,
        "changes": differences(last.payload, current) if last and last.payload else [],
        "current_json": json.dumps(current, indent=2, default=str, ensure_ascii=False),
    }


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
    if data["all_matching"]:
        ids = _matching_ids(company, data["type"], data["list_query"], data["action"])
    else:
        ids = data["ids"]  # bulk_start keeps only this company's
    job = actions.bulk_start(
        company=company, action=data["action"], sync_type=data["type"], ids=ids, user=request.user
    )
    if _is_htmx(request):
        context = _progress_context(
            job, list_name=request.POST.get("list", ""), query=request.POST.get("list_query", "")
        )
        return render(request, "sync/_bulk_progress.html", context)
    messages.info(request, f"{actions.BULK_ACTIONS[job.action]} started for {job.total} records.")
    return _back(request, sync_type)


# The lists a bulk job can be started from, and the table its finished bar reloads.
BULK_LISTS = {"problems": "sync:problems", "resolved": "sync:resolved"}
RESYNC_WATCH_SECONDS = 120  # how long the bar follows re-synced records after queueing them


def _list_query(raw: str, sync_type: str) -> str:
    """The page's own filters (search, reason, age, sort), so the reload keeps them."""
    params = QueryDict(raw[:1000], mutable=True)
    params.pop("page", None)
    params["type"] = sync_type
    return params.urlencode()


@login_required
@require_POST
def resend_descriptions(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Finance changed the description mapping: re-send the synced invoices as a bulk job."""
    if not check_viewer(request):
        raise PermissionDenied("You need the Finance role to change sync state.")
    company = current_company(request)
    ids = actions.invoices_to_resend(company=company)
    job = actions.bulk_start(
        company=company, action="resend", sync_type="invoice", ids=ids, user=request.user
    )
    messages.info(request, f"Re-sending {job.total} synced invoices with the new descriptions.")
    return redirect("sync:bulk_progress", job_id=job.pk)


def _matching_ids(company: Company, sync_type: str, query: str, action: str) -> list[int]:
    """Every record the list's filter matches, across its pages (as the list sorts them)."""
    form = ProblemFilterForm(QueryDict(query[:1000]))
    form.is_valid()
    filters = form.cleaned_data
    if action == "undo-clear":
        qs = selectors.waiting_list(company=company, sync_type=sync_type, statuses=("cleared",))
    else:
        qs = _filtered_problems(company, sync_type, filters, filters.get("sort") or "-since")
    return list(qs.values_list("pk", flat=True)[: actions.BULK_LIMIT])


def _progress_context(
    job: BulkJob, *, list_name: str = "problems", query: str = ""
) -> dict[str, Any]:
    job.refresh_from_db()
    queued_done = job.percent >= 100 or job.finished_at is not None
    outcome: dict[str, int] = {}
    following = False
    if job.action == "resync":
        # "Done" for a re-sync means queued; what became of them is what the clerk wants.
        statuses = Counter(
            model_for(job.record_type)
            .objects.filter(pk__in=job.record_ids)
            .values_list("sync_status", flat=True)
        )
        outcome = {
            "queued": sum(statuses[s] for s in OWED),
            "synced": statuses[SyncStatus.SYNCED],
            "failed": statuses[SyncStatus.PROBLEM],
        }
        recent = job.finished_at and timezone.now() - job.finished_at < timedelta(
            seconds=RESYNC_WATCH_SECONDS
        )
        following = bool(queued_done and outcome["queued"] and recent)
    list_url = reverse(BULK_LISTS.get(list_name, "sync:problems"))
    return {
        "job": job,
        "action_label": actions.BULK_ACTIONS.get(job.action, job.action),
        "finished": queued_done and not following,
        "outcome": outcome,
        "list_name": list_name if list_name in BULK_LISTS else "problems",
        "query": query,
        "list_url": list_url + "?" + _list_query(query, job.record_type),
    }


@login_required
@require_GET
def bulk_progress(request: AuthenticatedHttpRequest, job_id: int) -> HttpResponse:
    check_viewer(request)
    job = get_object_or_404(BulkJob, pk=job_id, company=current_company(request))
    context = _progress_context(
        job, list_name=request.GET.get("list", ""), query=request.GET.get("q", "")
    )
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
        "rows": [present(r, can_admin=request.user.is_staff) for r in page.object_list],
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


@login_required
@require_GET
def resolved(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _status_page(request, selectors.RESOLVED, "sync/resolved.html")


# Row actions posted from these lists: (statuses the list shows, its row template).
LIST_PAGES = {
    "not_syncing": (selectors.NOT_SYNCING, "sync/_not_syncing_row.html"),
    "resolved_page": (selectors.RESOLVED, "sync/_resolved_row.html"),
}
