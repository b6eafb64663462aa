"""The one table of queues and their policies, built from settings.QUEUE_POLICIES.

An app names its queue; everything about how that queue's jobs are retried, limited,
kept and de-duplicated is read from here, never written by hand in the app.
"""

import logging
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """At most `starts` job starts per `per_seconds`, across all workers."""

    starts: int
    per_seconds: float

    @classmethod
    def parse(cls, text):
        """Read "5/60" (five starts per sixty seconds)."""
        try:
            starts, seconds = str(text).split("/")
            limit = cls(int(starts), float(seconds))
        except ValueError:
            raise ImproperlyConfigured(f"rate_limit must look like '5/60', got {text!r}") from None
        if limit.starts < 1 or limit.per_seconds <= 0:
            raise ImproperlyConfigured(f"rate_limit must be positive, got {text!r}")
        return limit


@dataclass(frozen=True)
class QueuePolicy:
    name: str
    retry_delays: tuple = ()
    rate_limit: RateLimit | None = None
    keep_finished: int = 100
    keep_failed: int = 500
    finished_ttl: int = 7 * 86400
    failed_ttl: int = 30 * 86400
    dedupe_window: int | None = None
    timeout: int = 180
    # Jobs of this queue running at once, across every worker process (jobs/concurrency.py).
    concurrency: int = 1
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def max_retries(self):
        return len(self.retry_delays)


FIELDS = {
    "retry_delays",
    "rate_limit",
    "keep_finished",
    "keep_failed",
    "finished_ttl",
    "failed_ttl",
    "dedupe_window",
    "timeout",
    "concurrency",
}
# Older names still read, with a warning: {old: new}.
DEPRECATED_FIELDS = {"workers": "concurrency"}


def build_policy(name, values):
    values = renamed_fields(name, values)
    unknown = set(values) - FIELDS
    if unknown:
        raise ImproperlyConfigured(f"queue {name}: unknown policy fields {sorted(unknown)}")
    values["retry_delays"] = tuple(int(delay) for delay in values.get("retry_delays", ()))
    rate_limit = values.get("rate_limit")
    values["rate_limit"] = RateLimit.parse(rate_limit) if rate_limit else None
    values["concurrency"] = positive_int(name, "concurrency", values.get("concurrency", 1))
    return QueuePolicy(name=name, **values)


def renamed_fields(name, values):
    """A copy of `values` with deprecated field names replaced. The old name wins: the
    defaults use the new one, so an old one can only come from an override."""
    values = dict(values)
    for old, new in DEPRECATED_FIELDS.items():
        if old in values:
            log.warning("queue %s: policy field %r is deprecated, use %r", name, old, new)
            values[new] = values.pop(old)
    return values


def positive_int(name, field_name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"queue {name}: {field_name} must be a positive integer, got {value!r}")
    return value


@cache
def _policies(signature):
    return {name: build_policy(name, values) for name, values in settings.QUEUE_POLICIES.items()}


def all_policies():
    """Every declared queue, in priority order. Re-read when settings change (tests)."""
    return _policies(repr(settings.QUEUE_POLICIES))


def policy_for(queue_name):
    try:
        return all_policies()[queue_name]
    except KeyError:
        raise ImproperlyConfigured(f"queue {queue_name!r} is not declared in QUEUE_POLICIES") from None
