"""Job starts per time window, across all workers (RQ only limits concurrency).

A sliding log in a Redis sorted set, checked and updated in one Lua script so that two
workers can never both take the last slot. Time is Redis's own clock, not the workers'.
"""

from dataclasses import dataclass

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
# Keyed limits (per host, per domain) also note each key in their queue's index of keys in
# use, scored by when the key stops mattering (its last start leaves the window, its block
# ends), so that operators see the busiest keys without a SCAN. remember_key keeps the later time.
REMEMBER_KEY = """
local function remember_key(index, member, relevant_until, now)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
    local known = tonumber(redis.call('ZSCORE', index, member))
    if not known or known < relevant_until then
        redis.call('ZADD', index, relevant_until, member)
    end
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

# KEYS[1]: the block key, KEYS[2]: the queue's index of keys. ARGV: ms, the rate key.
BLOCK = (
    NOW_MS
    + REMEMBER_KEY
    + """
redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
if ARGV[2] ~= '' then
    remember_key(KEYS[2], ARGV[2], now + tonumber(ARGV[1]), now)
end
"""
)

_scripts = {}


def _script(connection, source):
    script = _scripts.get((id(connection), source))
    if script is None:
        script = _scripts[(id(connection), source)] = connection.register_script(source)
    return script


def limiter_key(queue_name, rate_key=None):
    return key("ratelimit", queue_name, rate_key) if rate_key else key("ratelimit", queue_name)


def keys_index(queue_name):
    """The sorted set of the queue's rate keys in use (jobs/concurrency.py and block add them)."""
    return key("ratelimit-keys", queue_name)


def split_limiter_key(log_key):
    """(queue name, rate key or None) of a limiter_key; queue names hold no colon."""
    parts = log_key.split(":", 3)
    return parts[2], (parts[3] if len(parts) == 4 else None)


def acquire(limit, log_key, member, connection=None):
    """Take one start slot. Return 0.0 if granted, else seconds to wait before trying again."""
    connection = connection or get_redis()
    keys = [log_key, block_key(log_key)]
    wait_ms = _script(connection, ACQUIRE)(keys=keys, args=[int(limit.per_seconds * 1000), limit.starts, member])
    return int(wait_ms) / 1000.0


def block_key(log_key):
    return f"{log_key}:blocked"


def block(log_key, seconds, connection=None):
    """Grant no start under this key for `seconds` (a remote said 429: Retry-After)."""
    queue_name, rate_key = split_limiter_key(log_key)
    keys = [block_key(log_key), keys_index(queue_name)]
    _script(connection or get_redis(), BLOCK)(keys=keys, args=[max(1, int(seconds * 1000)), rate_key or ""])


def starts_in_window(limit, log_key, connection=None):
    """How many starts the current window holds (for the dashboard and tests)."""
    connection = connection or get_redis()
    return connection.zcard(log_key)


@dataclass(frozen=True)
class KeyUse:
    """One rate key's use now: starts in the window, and the seconds it stays blocked."""

    rate_key: str
    in_window: int
    blocked_for: float


def keys_in_use(queue_name, limit, connection=None):
    """Every rate key of the queue with a start in the window or a block, busiest first
    (blocked ones before them). `limit`: the queue's RateLimit, or None (blocks only)."""
    connection = connection or get_redis()
    now_ms = redis_now_ms(connection)
    members = [raw.decode() for raw in connection.zrangebyscore(keys_index(queue_name), now_ms, "+inf")]
    with connection.pipeline(transaction=False) as pipe:
        for rate_key in members:
            log_key = limiter_key(queue_name, rate_key)
            pipe.zcount(log_key, now_ms - int(limit.per_seconds * 1000) if limit else "+inf", "+inf")
            pipe.pttl(block_key(log_key))
        replies = pipe.execute()
    uses = [KeyUse(rate_key, replies[2 * i], max(0, replies[2 * i + 1]) / 1000) for i, rate_key in enumerate(members)]
    return sorted(uses, key=lambda use: (-use.blocked_for, -use.in_window, use.rate_key))


def redis_now_ms(connection):
    seconds, microseconds = connection.time()
    return seconds * 1000 + microseconds // 1000
