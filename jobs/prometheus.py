"""GET /metrics: the Prometheus exposition of the queues and of the platform's own numbers.

- django-rq's collector (django_rq.contrib.prometheus): workers, jobs per queue and status;
- rows by status per kind, read from the database at scrape time;
- the counters jobs.metrics keeps in Redis, added up across every worker process: attempts
  by outcome, attempt durations (a histogram), rows finished by status (rule runs,
  deliveries…), posts ingested, rule changes, rate-limit waits, reconciler recoveries.

It answers only a request with `Authorization: Bearer METRICS_TOKEN`; without the setting
the endpoint does not exist (404), so an unconfigured deployment shows nothing.
"""

from secrets import compare_digest

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_rq.contrib.prometheus import RQCollector
from prometheus_client import CollectorRegistry, exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import lifecycle, metrics

# Counters without labels: {field in Redis: (metric name, help)}.
PLAIN_COUNTERS = {
    metrics.POSTS_INGESTED: ("conveyor_posts_ingested", "Posts stored for the first time by fetches."),
    metrics.RULE_CHANGES: ("conveyor_rule_changes", "Rule runs that found a change (and raised an alert)."),
}
# Counters with labels: {field name in Redis: (metric name, help, label names)}.
LABELLED_COUNTERS = {
    "attempts": ("conveyor_attempts", "Job attempts of rows, by how they ended.", ["kind", "outcome"]),
    "rows_finished": (
        "conveyor_rows_finished",
        "Rows that reached a final status through their jobs: rule runs, deliveries, fetches… by status.",
        ["kind", "status"],
    ),
    "rate_limit_waits": (
        "conveyor_rate_limit_waits",
        "Jobs held back by their queue's rate limit (scheduled again, no retry used).",
        ["queue"],
    ),
    "reconciler_resumed": (
        "conveyor_reconciler_resumed",
        "Rows the reconciler gave a new job because theirs was lost.",
        ["tracked"],
    ),
}


class ConveyorCollector:
    """The platform's metrics, read afresh at each scrape."""

    def collect(self):
        counters = metrics.read()
        yield rows_by_status()
        yield from plain_counters(counters)
        yield from labelled_counters(counters)
        yield attempt_durations(counters)


def rows_by_status():
    family = GaugeMetricFamily("conveyor_rows", "Rows of each kind by status, now.", labels=["kind", "status"])
    for kind in lifecycle.kinds():
        counted = dict(kind.model.objects.order_by().values_list("status").annotate(count=Count("pk")))
        for status, _ in kind.model._meta.get_field("status").choices:
            family.add_metric([kind.label, status], counted.get(status, 0))
    return family


def plain_counters(counters):
    for field, (name, documentation) in PLAIN_COUNTERS.items():
        yield CounterMetricFamily(name, documentation, value=counters.get((field,), 0))


def labelled_counters(counters):
    for field, (name, documentation, labels) in LABELLED_COUNTERS.items():
        family = CounterMetricFamily(name, documentation, labels=labels)
        for key, value in sorted(counters.items()):
            if key[0] == field and len(key) == len(labels) + 1:
                family.add_metric(list(key[1:]), value)
        yield family


def attempt_durations(counters):
    """A histogram per kind and outcome, its buckets summed up from the per-bucket counts."""
    family = HistogramMetricFamily(
        "conveyor_attempt_duration_seconds", "How long job attempts of rows ran.", labels=["kind", "outcome"]
    )
    series = {key[1:3] for key in counters if key[0] == "duration_bucket"}
    for kind, outcome in sorted(series):
        running, buckets = 0, []
        for bound in [*map(str, metrics.DURATION_BUCKETS), metrics.INFINITY]:
            running += counters.get(("duration_bucket", kind, outcome, bound), 0)
            buckets.append((bound, running))
        family.add_metric([kind, outcome], buckets, sum_value=counters.get(("duration_sum", kind, outcome), 0))
    return family


def authorized(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())


@never_cache
@require_GET
def metrics_view(request):
    if not settings.METRICS_TOKEN:
        raise Http404("METRICS_TOKEN is not set")
    if not authorized(request):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RQCollector())
    registry.register(ConveyorCollector())
    encoder, content_type = exposition.choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
