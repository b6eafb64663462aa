"""Per-queue pause (RQ only suspends all workers at once).

The database row (jobs.PausedQueue) is the operator's decision; the Redis set mirrors
it for workers, which read it before every dequeue, and the reconciler rewrites the set
from the rows so that a flushed Redis does not silently resume a paused queue.
"""

import time

from .connection import get_redis, key

PAUSED_SET = key("paused-queues")
# Workers re-read the set at most this often: cheap at thousands of jobs per second,
# and a pause takes effect within a fraction of a second.
CACHE_SECONDS = 0.25

_cache = {"at": 0.0, "names": frozenset()}


def paused_queue_names(connection=None, fresh=False):
    now = time.monotonic()
    if fresh or now - _cache["at"] > CACHE_SECONDS:
        members = (connection or get_redis()).smembers(PAUSED_SET)
        _cache.update(at=now, names=frozenset(member.decode() for member in members))
    return _cache["names"]


def mirror_to_redis(names, connection=None):
    """Make the Redis set hold exactly `names`, atomically."""
    with (connection or get_redis()).pipeline(transaction=True) as pipe:
        pipe.delete(PAUSED_SET)
        if names:
            pipe.sadd(PAUSED_SET, *names)
        pipe.execute()
    _cache["at"] = 0.0
