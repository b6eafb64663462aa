"""One Redis client per process for the platform's own keys (limits, pauses, dedupe, liveness)."""

from functools import cache

import redis
from django.conf import settings

from core.errors import QueueUnavailable

KEY_PREFIX = "conveyor"


@cache
def _client(url, connect_timeout, socket_timeout):
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )


def get_redis():
    return _client(settings.REDIS_URL, settings.REDIS_CONNECT_TIMEOUT, settings.REDIS_SOCKET_TIMEOUT)


def key(*parts):
    return ":".join((KEY_PREFIX, *map(str, parts)))


def ensure_available():
    """Raise QueueUnavailable unless Redis answers a PING within the socket timeouts."""
    try:
        get_redis().ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise QueueUnavailable(str(exc)) from exc


def is_available():
    try:
        ensure_available()
    except QueueUnavailable:
        return False
    return True
