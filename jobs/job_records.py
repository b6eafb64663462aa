"""RQ's records of a job's start and end, written in fewer commands than RQ writes them.

The django-rq dashboard reads these records, so they stay what RQ would write: the job's
hash (status, started_at, ended_at, last_heartbeat, worker_name), the queue's started and
finished registries, the execution hash and the worker's index of its executions (the
dashboard's started jobs and a worker's current job), the worker's state and statistics.
What goes:

- **the start**: RQ sends two transactions (the execution, then the job), each with the
  worker's heartbeat, and writes the job's last_heartbeat twice. Here one Lua fragment,
  run by the script that grants the start (jobs/concurrency.py), writes each record once:
  the start costs one round trip and no MULTI/EXEC. The worker's liveness thread keeps the
  worker's key and its executions index alive instead of every job start.
- **the end of a finished job**: RQ watches the job's dependents, reads them, saves the whole
  job hash again (its payload too), stores a result even when the job returned None, keeps
  a per-job index of executions that only a deletion reads, and expires dependency keys that
  do not exist. Here: one transaction, the job's changed fields only, a result only when
  there is one, and the worker's statistics and state in one HSET.

Conveyor's queues do not take RQ job dependencies (ConveyorQueue refuses them), which is
what lets the end skip reading the dependents. Failures, retries, repeats and jobs whose
results are not kept still go through RQ's own handling.
"""

from rq.job import JobStatus
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.utils import current_timestamp, utcformat
from rq.worker import WorkerStatus

# KEYS from `first_key`: the job, the queue's started registry, the execution, the worker,
# the worker's executions index, the intermediate list. ARGV from `first_arg`: job id,
# execution id, the started registry's score, the execution's TTL, the worker's name, the
# start as RQ formats it and as a timestamp. The job leaves the intermediate list that RQ
# pops into when it dequeues from one queue (a no-op otherwise): see
# ConveyorWorker.prepare_job_execution.
RECORD_START = """
local function record_start(k, a)
    local job, started, execution, worker, executions, intermediate = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
    local job_id, execution_id, score, ttl, worker_name, stamp, seconds = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
    local member = job_id .. ':' .. execution_id
    redis.call('HSET', execution, 'id', execution_id, 'job_id', job_id, 'created_at', seconds, 'last_heartbeat', seconds, 'worker_name', worker_name)
    redis.call('EXPIRE', execution, ttl)
    redis.call('ZADD', started, score, member)
    redis.call('SADD', executions, member)
    redis.call('HSET', worker, 'state', 'busy')
    redis.call('HSET', job, 'last_heartbeat', stamp, 'status', 'started', 'started_at', stamp, 'worker_name', worker_name)
    redis.call('PERSIST', job)
    redis.call('LREM', intermediate, 1, job_id)
end
"""


# The registries' keys, as RQ names them. Not through RQ's registry objects: each one built
# checks its serializer against a runtime Protocol, a cost per job for a string.
def started_key(queue_name):
    return StartedJobRegistry.key_template.format(queue_name)


def finished_key(queue_name):
    return FinishedJobRegistry.key_template.format(queue_name)


def start_keys_and_args(worker, job, queue, execution):
    """The KEYS and ARGV of record_start for `execution` of `job` by `worker`."""
    ttl = worker.get_heartbeat_ttl(job)
    keys = [
        job.key,
        started_key(queue.name),
        execution.key,
        worker.key,
        worker.executions_key,
        queue.intermediate_queue_key,
    ]
    stamp = execution.created_at
    args = [job.id, execution.id, current_timestamp() + ttl, ttl, worker.name, utcformat(stamp), stamp.timestamp()]
    return keys, args


def started(worker, job, execution):
    """Bring the objects in memory to what record_start wrote."""
    job.worker_name = worker.name
    job.last_heartbeat = job.started_at = execution.created_at
    job._status = JobStatus.STARTED
    worker.execution = execution
    worker._state = WorkerStatus.BUSY


def record_finish(pipeline, job, queue, result_ttl, worker_name, execution):
    """Add a finished job's records to `pipeline`: its changed fields, its result when it
    returned one, the finished registry and its expiry (result_ttl > 0, or -1: kept)."""
    job._status = JobStatus.FINISHED
    changed = {
        "status": JobStatus.FINISHED,
        "started_at": utcformat(job.started_at),
        "ended_at": utcformat(job.ended_at),
        "last_heartbeat": utcformat(job.last_heartbeat),
    }
    pipeline.hset(job.key, mapping=changed)
    if job._result is not None:
        Result.create(
            job,
            Result.Type.SUCCESSFUL,
            return_value=job._result,
            ttl=result_ttl,
            worker_name=worker_name,
            pipeline=pipeline,
            execution_id=execution.id,
            execution_started_at=execution.created_at,
            execution_ended_at=job.ended_at,
        )
    # Scored as RQ's FinishedJobRegistry.add scores it: its expiry, or +inf when kept.
    pipeline.zadd(finished_key(queue.name), {job.id: "+inf" if result_ttl < 0 else current_timestamp() + result_ttl})
    if result_ttl > 0:
        pipeline.expire(job.key, result_ttl)


def forget_execution(pipeline, job, worker, execution):
    """Remove a finished execution's records, as RQ's Execution.delete does, less the per-job
    index of executions that record_start never writes."""
    pipeline.delete(execution.key)
    pipeline.zrem(started_key(job.origin), execution.composite_key)
    pipeline.srem(worker.executions_key, execution.composite_key)
    worker.executions.pop(execution.id, None)
