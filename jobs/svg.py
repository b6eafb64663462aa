"""Server-side SVG charts for the admin: no JavaScript, no chart library, nothing from a CDN.

Two shapes: stacked bars over fixed buckets (jobs ended per minute or per hour) and lines
over time (backlog, age of the oldest queued job). Colours and text come from CSS classes
(templates/admin/jobs/charts_style.html), so the admin's dark mode applies. Each bar and
each chart carries a <title>, which browsers show as a tooltip.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe


@dataclass(frozen=True)
class Series:
    name: str  # key in each point's values
    label: str  # shown in tooltips and the legend
    css: str  # class of its bars or line


@dataclass(frozen=True)
class Frame:
    """A chart's size; the plot is inset by `left` (y labels) and `bottom` (x labels)."""

    width: int
    height: int
    axes: bool = True

    @property
    def left(self):
        return 34 if self.axes else 1

    @property
    def bottom(self):
        return 14 if self.axes else 1

    @property
    def top(self):
        return 6 if self.axes else 2

    @property
    def plot_width(self):
        return self.width - self.left - 2

    @property
    def plot_height(self):
        return self.height - self.top - self.bottom

    def y(self, value, top_value):
        return self.top + self.plot_height * (1 - value / top_value)


def clock(ts):
    return timezone.localtime(datetime.fromtimestamp(ts, UTC)).strftime("%H:%M")


def nice_ceiling(value):
    """The smallest of 1, 2, 5 × 10^n at or above `value` (an axis top), at least 1."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


def svg(frame, title, body, data=""):
    return mark_safe(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{frame.width}" height="{frame.height}"'
        f' viewBox="0 0 {frame.width} {frame.height}" role="img" aria-label="{escape(title)}"{data}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def axes(frame, top_value, x_labels, format_value=str):
    """The plot's background, the baseline, a grid line at the top value, its label, and
    the x labels (a small chart: background and baseline only)."""
    background = (
        f'<rect class="plot" x="{frame.left}" y="{frame.top}" width="{frame.plot_width}" height="{frame.plot_height}"/>'
    )
    if not frame.axes:
        return [
            background,
            f'<line class="axis" x1="0" x2="{frame.width}" y1="{frame.height - 0.5}" y2="{frame.height - 0.5}"/>',
        ]
    base = frame.top + frame.plot_height
    parts = [
        background,
        f'<line class="grid" x1="{frame.left}" x2="{frame.width - 2}" y1="{frame.top}" y2="{frame.top}"/>',
        f'<line class="axis" x1="{frame.left}" x2="{frame.width - 2}" y1="{base + 0.5}" y2="{base + 0.5}"/>',
        f'<text class="label" x="{frame.left - 4}" y="{frame.top + 4}" text-anchor="end">'
        f"{escape(format_value(top_value))}</text>",
        f'<text class="label" x="{frame.left - 4}" y="{base}" text-anchor="end">0</text>',
    ]
    for x, text, anchor in x_labels:
        parts.append(
            f'<text class="label" x="{x:.1f}" y="{frame.height - 2}" text-anchor="{anchor}">{escape(text)}</text>'
        )
    return parts


def bar_chart(points, series, frame, *, title, bucket_label=clock):
    """Stacked bars, one per bucket: `points` is [(bucket start, {series name: count})]."""
    totals = [sum(values.get(s.name, 0) for s in series) for _, values in points]
    top_value = nice_ceiling(max(totals, default=0))
    slot = frame.plot_width / max(1, len(points))
    body = []
    for index, (start, values) in enumerate(points):
        body.append(bar(frame, series, values, frame.left + index * slot, slot, top_value, bucket_label(start)))
    first, last = points[0][0], points[-1][0]
    labels = [(frame.left, bucket_label(first), "start"), (frame.width - 2, bucket_label(last), "end")]
    sums = {s.name: sum(values.get(s.name, 0) for _, values in points) for s in series}
    summary = ", ".join(f"{sums[s.name]} {s.label}" for s in series)
    data = "".join(f' data-{s.name}="{sums[s.name]}"' for s in series)
    return svg(frame, f"{title}: {summary}", axes(frame, top_value, labels) + body, data)


def bar(frame, series, values, x, slot, top_value, when):
    """One bucket's stack, bottom up, with its tooltip; an empty bucket draws nothing."""
    tooltip = f"{when}: " + ", ".join(f"{values.get(s.name, 0)} {s.label}" for s in series)
    rects, base = [], frame.top + frame.plot_height
    width = max(1.0, slot - (1 if slot > 3 else 0))
    for s in series:
        count = values.get(s.name, 0)
        if not count:
            continue
        height = frame.plot_height * count / top_value
        base -= height
        rects.append(f'<rect class="{s.css}" x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{height:.1f}"/>')
    if not rects:
        return ""
    return f"<g><title>{escape(tooltip)}</title>{''.join(rects)}</g>"


def line_chart(points, series, frame, *, title, start, end, format_value=str):
    """Lines over time from `start` to `end`: `points` is [(time, {series name: value})]."""
    top_value = nice_ceiling(max((v.get(s.name, 0) for _, v in points for s in series), default=0))

    def x(at):
        return frame.left + frame.plot_width * (min(max(at, start), end) - start) / max(1, end - start)

    body = []
    for s in series:
        coords = " ".join(f"{x(at):.1f},{frame.y(values.get(s.name, 0), top_value):.1f}" for at, values in points)
        body.append(f'<polyline class="{s.css}" fill="none" points="{coords}"/>')
        if points:  # the latest value as a dot: a lone sample is seen too
            at, values = points[-1]
            cy = frame.y(values.get(s.name, 0), top_value)
            body.append(f'<circle class="{s.css}" cx="{x(at):.1f}" cy="{cy:.1f}" r="2"/>')
    if points:
        latest = points[-1][1]
        now = ", ".join(f"{s.label} {format_value(latest.get(s.name, 0))}" for s in series)
    else:
        now = "no samples yet"
    labels = [(frame.left, clock(start), "start"), (frame.width - 2, clock(end), "end")]
    data = "".join(f' data-{s.name}="{points[-1][1].get(s.name, 0) if points else 0}"' for s in series)
    return svg(frame, f"{title} (now: {now})", axes(frame, top_value, labels, format_value) + body, data)


def duration(seconds):
    """A short human duration for axes and tooltips: 45 s, 12 min, 3 h, 2 d."""
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{seconds:.0f} s"
