"""The queue charts operators see (admin index, queue page): figures from jobs/charts.py
drawn by jobs/svg.py."""

import time

from . import charts, svg

ENDED = [
    svg.Series("finished", "finished", "finished"),
    svg.Series("retried", "failed, retried", "retried"),
    svg.Series("failed", "failed", "failed"),
]
# Queued drawn last, on top: it is the backlog workers can take now.
BACKLOG = [svg.Series("scheduled", "scheduled", "scheduled"), svg.Series("queued", "queued", "queued")]
OLDEST = [svg.Series("oldest", "oldest queued job", "oldest")]

LARGE = svg.Frame(480, 150)
SMALL = svg.Frame(180, 34, axes=False)


def draw_all(span_name="hour", frame=LARGE, now=None):
    """{queue: {"ended", "backlog", "oldest": SVG}} over the last hour or day."""
    span = charts.SPANS[span_name]
    now = time.time() if now is None else now
    ended = charts.jobs_ended(span, now)
    samples = charts.recorded_samples(span, now)
    return {name: draw_queue(span, frame, ended[name], samples[name], now) for name in ended}


def draw_queue(span, frame, ended, samples, now):
    start = span.starts(now)[0]
    per_bucket = "minute" if span is charts.MINUTES else "hour"
    points = bucket_peaks(span, samples)
    return {
        "ended": svg.bar_chart(ended, ENDED, frame, title=f"Jobs ended per {per_bucket}"),
        "totals": {outcome: sum(counts[outcome] for _, counts in ended) for outcome in charts.OUTCOMES},
        "backlog": svg.line_chart(
            [(at, {"queued": s.queued, "scheduled": s.scheduled}) for at, s in points],
            BACKLOG,
            frame,
            title="Backlog",
            start=start,
            end=now,
        ),
        "oldest": svg.line_chart(
            [(at, {"oldest": s.oldest_age}) for at, s in points],
            OLDEST,
            frame,
            title="Oldest queued job",
            start=start,
            end=now,
            format_value=svg.duration,
        ),
        "oldest_now": svg.duration(samples[-1].oldest_age) if samples else "—",
    }


def bucket_peaks(span, samples):
    """[(time, Sample)]: each bucket's peak sample (the largest backlog, the oldest job), at
    the bucket's start; the live sample, last, at its own time."""
    if span is charts.MINUTES:
        return [(sample.at, sample) for sample in samples]
    *recorded, live = samples
    peaks = {}
    for sample in recorded:
        start = span.start_of(sample.at)
        peak = peaks.get(start)
        peaks[start] = sample if peak is None else peak_of(peak, sample)
    return [*sorted(peaks.items()), (live.at, live)]


def peak_of(one, other):
    return charts.Sample(
        max(one.at, other.at),
        max(one.queued, other.queued),
        max(one.scheduled, other.scheduled),
        max(one.oldest_age, other.oldest_age),
    )
