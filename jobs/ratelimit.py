"""Job starts per time window, across all workers (RQ only limits concurrency).

A sliding log in a Redis sorted set, checked and updated in one Lua script so that two
workers can never both take the last slot. Time is Redis's own clock, not the workers'.
"""

from .connection import get_redis, key

# Lua shared with jobs/concurrency.py, which checks a start against both limits at once.
# NOW_MS: Redis's clock in milliseconds. take_start(log, block, window ms, limit, member, now):
# 0 when the start is granted (and logged), else the milliseconds to wait.
NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
TAKE_START = """
local function take_start(log, block, window, limit, member, now)
    local blocked = redis.call('PTTL', block)
    if blocked > 0 then
        return blocked
    end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    if redis.call('ZCARD', log) < limit then
        redis.call('ZADD', log, now, member)
        redis.call('PEXPIRE', log, window)
        return 0
    end
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
end
"""
# KEYS[1]: the log, KEYS[2]: a block set by `block`. ARGV: window in ms, limit, member.
ACQUIRE = (
    NOW_MS
    + TAKE_START
    + """
return take_start(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], now)
"""
)

_scripts = {}


def _acquire_script(connection):
    script = _scripts.get(id(connection))
    if script is None:
        script = _scripts[id(connection)] = connection.register_script(ACQUIRE)
    return script


def limiter_key(queue_name, rate_key=None):
    return key("ratelimit", queue_name, rate_key) if rate_key else key("ratelimit", queue_name)


def acquire(limit, log_key, member, connection=None):
    """Take one start slot. Return 0.0 if granted, else seconds to wait before trying again."""
    connection = connection or get_redis()
    keys = [log_key, block_key(log_key)]
    wait_ms = _acquire_script(connection)(keys=keys, args=[int(limit.per_seconds * 1000), limit.starts, member])
    return int(wait_ms) / 1000.0


def block_key(log_key):
    return f"{log_key}:blocked"


def block(log_key, seconds, connection=None):
    """Grant no start under this key for `seconds` (a remote said 429: Retry-After)."""
    connection = connection or get_redis()
    connection.set(block_key(log_key), 1, px=max(1, int(seconds * 1000)))


def starts_in_window(limit, log_key, connection=None):
    """How many starts the current window holds (for the dashboard and tests)."""
    connection = connection or get_redis()
    return connection.zcard(log_key)
