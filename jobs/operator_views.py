"""The platform's pages in the admin (staff only, under /admin/jobs/): a queue's charts with
pause and resume, and the failed jobs of every queue, searched, requeued or deleted.

Thin like the API's views: they read through jobs.selectors and jobs.queue_charts, write
through jobs.services, and answer with a message and a redirect (POST, then GET).
"""

from functools import wraps

import redis
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import queue_charts, selectors, services
from .admin import dashboard_job_url
from .connection import QueueUnavailable
from .policies import all_policies

PAGE_SIZE = 50
RANGES = {"hour": "Last hour", "day": "Last 24 hours"}


def page_context(request, title, **extra):
    return {**admin.site.each_context(request), "title": title, **extra}


def needs_redis(view):
    """The page says that Redis is unavailable instead of failing with a 500."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (QueueUnavailable, redis.ConnectionError, redis.TimeoutError):
            context = page_context(request, "The job queue is unavailable")
            return TemplateResponse(request, "admin/jobs/unavailable.html", context, status=503)

    return guarded


# --- one queue: charts, counts, pause and resume -------------------------------------------


def known_queue(name):
    if name not in all_policies():
        raise Http404(f"No queue {name!r}")


@needs_redis
def queue_page(request, name):
    known_queue(name)
    span = request.GET.get("range", "hour")
    if span not in RANGES:
        span = "hour"
    stat = next(stat for stat in services.queue_stats() if stat["name"] == name)
    charts = queue_charts.draw_all(span)[name]
    context = page_context(request, f"Queue {name}", queue=stat, charts=charts, span=span, ranges=RANGES)
    return TemplateResponse(request, "admin/jobs/queue.html", context)


@require_POST
@needs_redis
def queue_pause(request, name):
    known_queue(name)
    services.queue_pause(name=name, by=request.user, reason=request.POST.get("reason", "")[:200])
    messages.success(request, f"Queue {name} paused: running jobs finish, queued jobs wait until it is resumed.")
    return back(request, name)


@require_POST
@needs_redis
def queue_resume(request, name):
    known_queue(name)
    services.queue_resume(name=name)
    messages.success(request, f"Queue {name} resumed: workers take its jobs again.")
    return back(request, name)


def back(request, name):
    """To the page the form was on (the admin index, the queue page), if it is ours."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("jobs_admin:queue", name=name)


# --- failed jobs -------------------------------------------------------------------------


@needs_redis
def failed_jobs(request):
    search, problems = search_from(request.GET)
    if request.method == "POST":
        return failed_jobs_action(request, search)
    found = selectors.failed_jobs(search)
    page = Paginator(found.found, PAGE_SIZE).get_page(request.GET.get("p"))
    selectors.with_errors(page.object_list)
    statuses = selectors.row_statuses(page.object_list)
    rows = [
        {
            "failed": failed,
            "row_status": statuses.get((failed.kind_label, failed.row_id)),
            "dashboard_url": dashboard_job_url(failed.queue, failed.job.id),
        }
        for failed in page.object_list
    ]
    for problem in problems:
        messages.warning(request, problem)
    context = page_context(
        request,
        "Failed jobs",
        search=search,
        found=found,
        page=page,
        rows=rows,
        queues=list(all_policies()),
        kinds=sorted(found.kinds | ({search.kind} if search.kind else set())),
        query=request.GET.urlencode(),
        paging_query=without(request.GET, "p"),
    )
    return TemplateResponse(request, "admin/jobs/failed_jobs.html", context)


def failed_jobs_action(request, search):
    """`do` is "<requeue|delete>:<selected|matching|job id>". A delete asks first."""
    action, _, target = request.POST.get("do", "").partition(":")
    if action not in ("requeue", "delete") or not target:
        messages.error(request, "Choose an action: requeue or delete.")
        return redirect_to_search(request)
    job_ids = chosen_job_ids(request, search, target)
    if not job_ids:
        messages.warning(request, "No failed job was chosen: tick some, or use the buttons for all that match.")
        return redirect_to_search(request)
    if action == "delete" and request.POST.get("confirmed") != "yes":
        return confirm_delete(request, target, job_ids)
    if action == "requeue":
        done = services.failed_jobs_requeue(job_ids=job_ids)
        messages.success(request, f"Requeued {plural(done, 'failed job')}: their rows are queued again and will run.")
    else:
        done = services.failed_jobs_delete(job_ids=job_ids)
        messages.success(
            request,
            f"Deleted {plural(done, 'failed job')} from RQ. Their rows stay failed, with their error; "
            "use Retry on a row to try it again.",
        )
    if done < len(job_ids):
        messages.warning(request, f"{plural(len(job_ids) - done, 'job')} had already left the failed list.")
    return redirect_to_search(request)


def chosen_job_ids(request, search, target):
    if target == "selected":
        return request.POST.getlist("job")
    if target == "matching":
        return [failed.job.id for failed in selectors.failed_jobs(search).found]
    return [target]


def confirm_delete(request, target, job_ids):
    context = page_context(
        request,
        "Delete failed jobs?",
        do=f"delete:{target}",
        job_ids=job_ids if target == "selected" else [],
        count=len(job_ids),
        query=request.GET.urlencode(),
    )
    return TemplateResponse(request, "admin/jobs/failed_jobs_delete.html", context)


def redirect_to_search(request):
    query = request.GET.urlencode()
    return redirect(reverse("jobs_admin:failed") + (f"?{query}" if query else ""))


def search_from(params):
    """The search in the query string, and what in it could not be read."""
    problems = []

    def moment(name, label):
        text = params.get(name, "").strip()
        if not text:
            return None
        parsed = parse_datetime(text)
        if parsed is None:
            problems.append(f"“{text}” is not a date and time ({label}); it was ignored.")
            return None
        return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed

    queue = params.get("queue", "")
    search = selectors.FailedSearch(
        queue=queue if queue in all_policies() else "",
        kind=params.get("kind", ""),
        text=params.get("q", "").strip(),
        failed_after=moment("failed_after", "failed after"),
        failed_before=moment("failed_before", "failed before"),
    )
    return search, problems


def without(params, name):
    copy = params.copy()
    copy.pop(name, None)
    return copy.urlencode()


def plural(count, noun):
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
