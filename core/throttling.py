"""Per-user limits on the API endpoints that enqueue work (DRF's scoped throttles).

The counts live in the cache, which is Redis: when it is down, the request would fail
at its enqueue anyway, so the throttle answers as the enqueue would (503, nothing done)
instead of crashing.
"""

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from .errors import QueueUnavailable


class EnqueueThrottle(ScopedRateThrottle):
    """`throttle_scope` on the view names the rate (settings.REST_FRAMEWORK's
    DEFAULT_THROTTLE_RATES, from THROTTLE_<SCOPE> in the environment)."""

    def get_rate(self):
        # Read when asked, not when the class was defined, so a changed setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
