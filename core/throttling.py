"""Per-user limits on the API endpoints that enqueue work (DRF's scoped throttles).

Counted by the platform's own limiter (jobs.ratelimit: a sliding log in Redis, checked and
updated in one Lua call), not DRF's cache read-then-write: one round trip instead of two,
and two requests at once cannot both take the last place. When Redis is down, the request
would fail at its enqueue anyway, so the throttle answers as the enqueue would (503,
nothing done) instead of crashing.
"""

import uuid

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from jobs import ratelimit
from jobs.connection import key
from jobs.policies import RateLimit

from .errors import QueueUnavailable


class EnqueueThrottle(ScopedRateThrottle):
    """`throttle_scope` on the view names the rate (settings.REST_FRAMEWORK's
    DEFAULT_THROTTLE_RATES, from THROTTLE_<SCOPE> in the environment)."""

    wait_seconds = None

    def get_rate(self):
        # Read when asked, not when the class was defined, so a changed setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        self.rate = self.get_rate() if self.scope else None
        if self.rate is None:
            return True
        requests, seconds = self.parse_rate(self.rate)
        log_key = key(self.get_cache_key(request, view))
        try:
            self.wait_seconds = ratelimit.acquire(RateLimit(requests, seconds), log_key, uuid.uuid4().hex)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return self.wait_seconds == 0

    def wait(self):
        return self.wait_seconds
