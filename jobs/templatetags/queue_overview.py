from django import template

from jobs import services
from jobs.connection import QueueUnavailable

register = template.Library()


@register.inclusion_tag("admin/jobs/queue_overview.html")
def queue_overview():
    """Per-queue counts for the admin index, drawn as bars; says so when Redis is down."""
    try:
        stats = services.queue_stats()
    except QueueUnavailable:
        return {"unavailable": True}
    largest = max([1] + [row["queued"] + row["scheduled"] + row["started"] + row["failed"] for row in stats])
    for row in stats:
        row["bars"] = [
            (kind, row[kind], 100 * row[kind] / largest) for kind in ("started", "queued", "scheduled", "failed")
        ]
    return {"queues": stats}
