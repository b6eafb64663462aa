"""Job starts per time window, across all workers (RQ only limits concurrency).

A sliding log in a Redis sorted set, checked and updated in one Lua script so that two
workers can never both take the last slot. Time is Redis's own clock, not the workers'.
"""

from .connection import get_redis, key

# KEYS[1]: the log, KEYS[2]: a block set by `block`. ARGV: window in ms, limit, member.
# Returns 0 when the start is granted, else the milliseconds to wait.
ACQUIRE = """
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then
    return blocked
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

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
