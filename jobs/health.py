"""What /health reports: each part connected or unavailable, and live workers."""

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .connection import get_redis

log = logging.getLogger(__name__)


def check(probe):
    try:
        probe()
    except Exception as exc:
        log.warning("health: %s unavailable: %s", probe.__name__, exc)
        return "unavailable"
    return "connected"


def database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def cache_backend():
    # A key per probe: concurrent probes must not overwrite each other's value.
    token = uuid.uuid4().hex
    probe_key = f"health-probe:{token}"
    cache.set(probe_key, token, timeout=10)
    try:
        if cache.get(probe_key) != token:
            raise RuntimeError("cache did not return what was stored")
    finally:
        cache.delete(probe_key)


def queue():
    get_redis().ping()


def live_workers():
    from .worker import count_live_workers

    try:
        return count_live_workers(get_redis())
    except Exception:
        return 0


def report():
    parts = {"database": check(database), "cache": check(cache_backend), "queue": check(queue)}
    healthy = all(state == "connected" for state in parts.values())
    return {
        "status": "ok" if healthy else "degraded",
        **parts,
        "workers": live_workers() if parts["queue"] == "connected" else 0,
        "timestamp": timezone.now().isoformat(),
    }
