from django import template

from jobs import queue_charts, services
from jobs.connection import QueueUnavailable
from jobs.policies import all_policies

register = template.Library()


@register.inclusion_tag("admin/jobs/queue_overview.html", takes_context=True)
def queue_overview(context):
    """Per-queue counts as bars, the last hour as charts, the start limits with their busiest
    keys, and a pause or resume button; says so when Redis is down."""
    try:
        stats = services.queue_stats()
        charts = queue_charts.draw_all("hour", queue_charts.SMALL)
    except QueueUnavailable:
        return {"unavailable": True}
    largest = max([1] + [row["queued"] + row["scheduled"] + row["started"] + row["failed"] for row in stats])
    for row in stats:
        row["bars"] = [
            (kind, row[kind], 100 * row[kind] / largest) for kind in ("started", "queued", "scheduled", "failed")
        ]
        row["charts"] = charts[row["name"]]
        row["ended_summary"] = ended_summary(row["charts"]["totals"])
    request = context.get("request")
    return {
        "queues": stats,
        "failed_total": sum(row["failed"] for row in stats),
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path() if request else "",
    }


def ended_summary(totals):
    return f"{totals['finished']} finished · {totals['failed'] + totals['retried']} failed"


@register.simple_tag
def queue_names():
    """Every declared queue, in priority order (links to the queue pages)."""
    return list(all_policies())
