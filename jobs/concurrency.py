"""Per-queue concurrency: at most `concurrency` jobs of a queue run at once, across every
worker process wherever it runs.

A running job holds a lease: a member of a Redis sorted set per queue, scored by its expiry
on Redis's clock. One Lua script checks a job's start against its queue's cap and its
start-rate limit (jobs/ratelimit.py) and takes both, or neither: one round trip per job.
The worker's liveness thread pushes the lease's expiry back while the job runs, and the
lease is dropped in the pipeline RQ already sends when the job ends. A worker killed with
SIGKILL stops pushing it back, so its slot frees itself within WORKER_ALIVE_TTL. When Redis
loses its data (a flush, a restart without persistence), the running job's next refresh
takes its lease again: the cap is void for at most one WORKER_HEARTBEAT, not for the rest
of a job that may run for minutes.

A pool of worker processes serving several queues (`rqworker-pool`) keeps one of its
processes for the other queues: inside the pool, a queue's cap is min(concurrency,
pool size - 1), held in a second set of leases, one per pool.
"""

import uuid
from dataclasses import dataclass

from django.conf import settings

from . import job_records, ratelimit
from .connection import key

# KEYS: the queue's leases, its leases in this pool (KEYS[1] again when no pool cap), the
# rate-limit log and its block key (KEYS[1] again when no rate limit), the queue's index of
# rate keys in use (KEYS[1] again when the limit is not per key).
# ARGV: cap, pool cap (0: none), lease member, lease ms, rate window ms (0: no rate limit),
# rate limit, rate-log member, rate key ("" when the limit is queue-wide).
# When the worker records the start here too, KEYS[6..] and ARGV[9..] are record_start's
# (jobs/job_records.py), written once the start is granted.
# Returns -1 when a cap is reached, 0 when the start is granted (lease and rate slot taken),
# else the milliseconds until a rate slot frees. Nothing is taken unless it returns 0.
# Expired leases are not counted, and pruned by the refresh (never a second command per
# start); a queue's set of leases never expires as a whole (one key per queue), a pool's
# does, since a stopped pool never uses it again.
TRY_START = (
    ratelimit.NOW_MS
    + ratelimit.TAKE_START
    + ratelimit.REMEMBER_KEY
    + job_records.RECORD_START
    + """
local function full(leases, cap)
    return redis.call('ZCOUNT', leases, now, '+inf') >= cap
end
local pool_cap = tonumber(ARGV[2])
if full(KEYS[1], tonumber(ARGV[1])) or (pool_cap > 0 and full(KEYS[2], pool_cap)) then
    return -1
end
local window = tonumber(ARGV[5])
if window > 0 then
    local wait = take_start(KEYS[3], KEYS[4], window, tonumber(ARGV[6]), ARGV[7], now)
    if wait > 0 then
        return wait
    end
    if ARGV[8] ~= '' then
        remember_key(KEYS[5], ARGV[8], now + window, now)
    end
end
local lease_ms = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[3])
if pool_cap > 0 then
    redis.call('ZADD', KEYS[2], now + lease_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[2], lease_ms)
end
if #KEYS > 5 then
    record_start(6, 9)
end
return 0
"""
)

# KEYS: the queue's leases, then the pool's when there is one. ARGV: the lease's member,
# lease ms. The leases of killed workers, expired, are pruned here. A lease Redis lost is
# added again (no XX): only a running job's worker refreshes its lease, and never once it
# has sent the lease's release (ConveyorWorker._lease_guard). Returns how many came back.
REFRESH = (
    ratelimit.NOW_MS
    + """
local added = 0
for index, leases in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    added = added + redis.call('ZADD', leases, now + tonumber(ARGV[2]), ARGV[1])
    if index > 1 then
        redis.call('PEXPIRE', leases, ARGV[2])
    end
end
return added
"""
)

OVER_CAP = -1


@dataclass(frozen=True)
class Pool:
    """The `rqworker-pool` a worker process belongs to, when that pool serves several queues."""

    pool_id: str
    size: int

    def cap(self, concurrency):
        """A queue's cap inside this pool: one process always stays free for the other queues."""
        return min(concurrency, self.size - 1)


# Set by the rqworker-pool command before it forks its workers, which inherit it.
_current_pool = None


def join_pool(size):
    """Make the workers this process forks from now on one pool of `size` processes."""
    global _current_pool
    _current_pool = Pool(uuid.uuid4().hex, size) if size > 1 else None


def current_pool():
    return _current_pool


@dataclass(frozen=True)
class Lease:
    """One running job's slot: its member in each set of leases that counts it."""

    keys: tuple
    member: str

    def refresh(self, connection):
        """Push the lease's expiry back, taking it again where Redis lost it. True if it did."""
        return bool(_script(connection, REFRESH)(keys=list(self.keys), args=[self.member, lease_ms()]))

    def release(self, pipeline):
        for leases in self.keys:
            pipeline.zrem(leases, self.member)


@dataclass(frozen=True)
class Start:
    """try_start's answer: a lease (go), over the cap (wait for a slot), or seconds to wait
    for the rate limit."""

    lease: Lease | None = None
    over_cap: bool = False
    rate_wait: float = 0.0


def leases_key(queue_name, pool_id=None):
    return key("concurrency", queue_name, "pool", pool_id) if pool_id else key("concurrency", queue_name)


def lease_ms():
    return int(settings.WORKER_ALIVE_TTL * 1000)


def try_start(
    connection, policy, job_id, *, pool=None, rate_key=None, rate_limited=True, rate_member=None, record=None
):
    """Check one start of `job_id` on the queue of `policy` against the queue's cap (and its
    cap inside `pool`) and its rate limit, atomically. Nothing is taken unless granted;
    `record` (record_start's keys and args) is written when it is."""
    leases = leases_key(policy.name)
    pool_cap = pool.cap(policy.concurrency) if pool else 0
    if pool_cap >= policy.concurrency:
        pool_cap = 0  # the queue's own cap is the tighter one: no need to count inside the pool
    pool_leases = leases_key(policy.name, pool.pool_id) if pool_cap else leases
    rate_log = block = index = leases
    window = starts = 0
    if policy.rate_limit and rate_limited:
        rate_log = ratelimit.limiter_key(policy.name, rate_key)
        block = ratelimit.block_key(rate_log)
        index = ratelimit.keys_index(policy.name)
        window, starts = int(policy.rate_limit.per_seconds * 1000), policy.rate_limit.starts
    keyed = rate_key if window and rate_key else ""
    keys = [leases, pool_leases, rate_log, block, index]
    args = [policy.concurrency, pool_cap, job_id, lease_ms(), window, starts, rate_member or job_id, keyed]
    if record is not None:
        keys, args = keys + record[0], args + record[1]
    answer = int(_script(connection, TRY_START)(keys=keys, args=args))
    if answer == OVER_CAP:
        return Start(over_cap=True)
    if answer > 0:
        return Start(rate_wait=answer / 1000.0)
    return Start(lease=Lease(tuple(dict.fromkeys([leases, pool_leases])), job_id))


def running(queue_name, connection):
    """How many of the queue's jobs hold a lease now, across all workers (dashboard, tests)."""
    return connection.zcount(leases_key(queue_name), _redis_now_ms(connection), "+inf")


def _redis_now_ms(connection):
    seconds, microseconds = connection.time()
    return seconds * 1000 + microseconds // 1000


_scripts = {}


def _script(connection, source):
    script = _scripts.get((id(connection), source))
    if script is None:
        script = _scripts[(id(connection), source)] = connection.register_script(source)
    return script
