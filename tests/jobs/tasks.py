"""Job functions for the platform's tests (importable by real worker processes)."""

import time

from jobs.connection import get_redis


def record(label):
    """Append `label` and the time to a Redis list, so a test can see what ran and when."""
    get_redis().rpush("test:ran", f"{label}:{time.time()}")
    return label


def sleep_then_record(label, seconds):
    time.sleep(seconds)
    return record(label)


def fail_always(label):
    record(label)
    raise RuntimeError(f"{label} failed on purpose")


def ran():
    """[(label, time)] of every recorded run, in order."""
    rows = [item.decode().rsplit(":", 1) for item in get_redis().lrange("test:ran", 0, -1)]
    return [(label, float(at)) for label, at in rows]


def record_span(label, seconds):
    """Record when this job started and ended (`label:start`, `label:end`), sleeping between."""
    record(f"{label}>start")
    time.sleep(seconds)
    return record(f"{label}>end")


def spans():
    """{label: (start, end)} of the record_span jobs seen so far (end None while running)."""
    found = {}
    for label, at in ran():
        name, _, edge = label.partition(">")
        if edge == "start":
            found[name] = (at, None)
        elif edge == "end":
            found[name] = (found[name][0], at)
    return found


def nothing():
    """Return None, as most jobs do."""
