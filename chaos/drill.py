"""The drill: requests keep arriving (publishings, fetches, rule checks that alert through
a signed webhook, likes), while faults are thrown at the stack; then every request must
end in a final state, with no outside effect done twice.

It measures, for each kind of fault, how long the platform took to recover, and whether
django-rq's dashboard counts the true number of workers again afterwards.
"""

import json
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from .limits import GRANT_TO_FETCH_SLACK, most_at_once, outside_of, overlapping_pairs, windows
from .stack import WORKER_HEARTBEAT, Stack, wait_until

FINAL = {"succeeded", "failed", "delivered", "duplicate"}
# Rows that have not moved for this long, unfinished, are stuck.
STILL_SECONDS = 60
# A kill that found no busy worker for a minute: not a recovery, counted apart.
NOTHING_TO_KILL = "nothing to kill"
KILL_GOAL = 30  # seconds for a killed worker's row to move on
# Once Redis answers again after forgetting, a running job's worker takes its lease again at
# its next heartbeat; the slack covers a heartbeat that was waiting on the Redis that went.
RETAKE_SECONDS = WORKER_HEARTBEAT + 2


@dataclass
class Plan:
    """How much fire. The bounded plan runs in `make test`; FULL in `make chaos`."""

    minutes: float = 1.0
    kills: int = 3
    flushes: int = 1
    redis_restarts: int = 0
    outage_seconds: float = 0
    scheduler_faults: bool = False
    shutdown: bool = False
    host_kills: int = 0
    # Two "hosts" even in the bounded drill: the caps and limits must hold across them.
    pools: int = 2
    workers_per_pool: int = 2
    settle_seconds: float = 120


FULL = Plan(
    minutes=6,
    kills=100,
    flushes=2,
    redis_restarts=1,
    outage_seconds=60,
    scheduler_faults=True,
    shutdown=True,
    host_kills=1,
    pools=2,
    workers_per_pool=4,
    settle_seconds=1200,
)


@dataclass
class Results:
    requests: Counter = field(default_factory=Counter)
    refused_503: list = field(default_factory=list)  # seconds each 503 took
    rows: dict = field(default_factory=dict)  # kind -> [row id]
    recoveries: dict = field(default_factory=lambda: defaultdict(list))  # fault -> [seconds]
    dashboard: list = field(default_factory=list)  # (fault, workers seen, expected)
    outage: dict = field(default_factory=dict)
    final: Counter = field(default_factory=Counter)
    unfinished: list = field(default_factory=list)
    stuck: list = field(default_factory=list)  # what the rows and Redis said of the first unfinished
    slow_kills: list = field(default_factory=list)  # the same, of a killed worker's row late to move on
    duplicates: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)  # what -> {"most": n, "limit": n, ...}
    redis_forgot: list = field(default_factory=list)  # time.time() of each flush or Redis restart
    # What the publishing queue's leases held when Redis forgot: {moment, back, jobs}; back:
    # when Redis answered again (the moment itself for a flush)
    forgotten_leases: list = field(default_factory=list)
    worker_pids: dict = field(default_factory=dict)  # every worker seen: name -> pid
    faults: list = field(default_factory=list)  # (time.time(), fault) as each began
    not_thrown: Counter = field(default_factory=Counter)  # fault -> times it found nothing to hit
    started: float = 0.0  # time.time() as the load began


class Drill:
    def __init__(self, plan, log=print):
        self.plan, self.log = plan, log
        self.results = Results(rows=defaultdict(list))
        self.stop_load = threading.Event()

    def run(self):
        stack = Stack(pools=self.plan.pools, workers_per_pool=self.plan.workers_per_pool, log=self.log)
        try:
            self.stack = stack.start()
            self.setup_django()
            self.prepare()
            self.wait_for_workers()
            loader = threading.Thread(target=self.load, daemon=True)
            self.results.started = time.time()
            loader.start()
            self.throw_faults()
            self.stop_load.set()
            loader.join(30)
            self.settle()
            self.count_duplicates()
            self.check_limits()
            return self.results
        except BaseException:
            self.log(stack.logs())
            raise
        finally:
            self.stop_load.set()
            stack.stop()

    # --- the user's world -----------------------------------------------------------------------

    def setup_django(self):
        os.environ.update({key: value for key, value in self.stack.env.items() if key not in ("PYTHONPATH",)})
        import django

        django.setup()

    def prepare(self):
        """A user with a token, a project, a source with posts, watched pages, a signed
        webhook channel and an account to like posts with: all through the real API."""
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        user = get_user_model().objects.create_user("chaos", password="unused-chaos-pass")
        self.client = httpx.Client(
            base_url=self.stack.url,
            headers={"Authorization": f"Token {Token.objects.create(user=user).key}"},
            timeout=10,
        )
        self.project = self.created("/api/v1/projects/", {"name": "app", "directory": "app"})
        # Slow enough that kills land inside CLI calls, submissions included.
        self.stack.eas.configure(polls_until_done=2, build_hang_seconds=0.5, submit_hang_seconds=0.5)
        self.stack.platforms.add_posts("mastodon", "public", [{"content": f"<p>post {n}</p>"} for n in range(400)])
        # The stand-in spends a rate budget of 300 requests, then holds the host back (as
        # Mastodon does, and as it should): the drill is about faults, not that wait.
        self.stack.platforms.set_rate_limit_remaining(10**9)
        self.source = self.created(
            "/api/v1/sources/",
            {"name": "m", "platform": "mastodon", "url": self.stack.platforms.url, "target": "public"},
        )
        self.created("/api/v1/accounts/", {"instance": self.stack.platforms.url, "access_token": "chaos-token"})
        self.rules = [
            self.created("/api/v1/rules/", {"name": f"r{n}", "url": self.page(n, 0), "expression": "#v"})
            for n in range(5)
        ]
        self.created(
            "/api/v1/channels/", {"name": "hook", "kind": "webhook", "url": f"{self.stack.outside.url}/hook/c"}
        )
        self.posts = self.fetch_posts()

    def created(self, path, body):
        response = self.client.post(path, json=body)
        assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
        return response.json()["id"]

    def page(self, rule, version):
        return self.stack.outside.set_page(f"rule{rule}", f"<html><body><p id='v'>{rule}.{version}</p></body></html>")

    def fetch_posts(self):
        from aggregation.models import Post

        self.client.post(f"/api/v1/sources/{self.source}/fetch", json={})
        wait_until(lambda: Post.objects.count() >= 100, timeout=60)
        return list(Post.objects.values_list("pk", flat=True))

    def wait_for_workers(self):
        from rq import Worker

        seen = wait_until(
            lambda: Worker.count(connection=self.stack.redis_client()) >= self.stack.expected_workers, timeout=60
        )
        assert seen, "the workers did not register"

    # --- the load ---------------------------------------------------------------------------

    def load(self):
        """Requests keep arriving, about three a second, of every kind. Publishings run one
        at a time (their queue's concurrency is 1), a few steps each: fewer of them."""
        versions = Counter()
        kinds, weights = ["publishing", "fetch", "run", "like"], [1, 3, 3, 3]
        while not self.stop_load.is_set():
            kind = random.choices(kinds, weights)[0]
            try:
                self.request(kind, versions)
            except httpx.HTTPError:
                self.results.requests["transport error"] += 1
            self.stop_load.wait(0.3)

    def request(self, kind, versions):
        if kind == "like" and not self.posts:
            return
        path, body, row_kind = self.request_of(kind, versions)
        started = time.monotonic()
        response = self.client.post(path, json=body)
        self.results.requests[f"{kind}: {response.status_code}"] += 1
        if response.status_code == 503:
            self.results.refused_503.append(time.monotonic() - started)
        elif response.status_code == 202:
            answer = response.json()
            self.results.rows[row_kind].append(answer.get("run") or answer["id"])

    def request_of(self, kind, versions):
        if kind == "publishing":
            body = {"project": self.project, "platform": "all", "credentials": {"expo_token": "chaos-expo-token"}}
            return "/api/v1/publishing/initiate", body, "publishing"
        if kind == "fetch":
            return f"/api/v1/sources/{self.source}/fetch", {}, "fetch"
        if kind == "run":
            rule = random.randrange(len(self.rules))
            versions[rule] += 1
            self.page(rule, versions[rule])  # a real change: an alert, a delivery
            return f"/api/v1/rules/{self.rules[rule]}/run", {}, "run"
        return f"/api/v1/posts/{self.posts.pop()}/actions", {"action": "like"}, "action"

    # --- the faults -----------------------------------------------------------------------------

    def throw_faults(self):
        """Spread the plan's faults over its minutes, in a shuffled order."""
        faults = ["kill"] * self.plan.kills + ["flush"] * self.plan.flushes
        faults += ["redis restart"] * self.plan.redis_restarts
        faults += ["outage"] * bool(self.plan.outage_seconds)
        faults += ["scheduler kill", "two schedulers"] * self.plan.scheduler_faults
        faults += ["pool shutdown"] * self.plan.shutdown
        faults += ["host down"] * self.plan.host_kills
        random.shuffle(faults)
        spacing = self.plan.minutes * 60 / (len(faults) + 1)
        for fault in faults:
            time.sleep(spacing)
            started = time.monotonic()
            self.results.faults.append((time.time(), fault))
            recovered = FAULTS[fault](self)
            if recovered == NOTHING_TO_KILL:
                self.results.not_thrown[fault] += 1
                self.log(f"{fault}: not thrown, no worker was busy for a minute")
                continue
            self.results.recoveries[fault].append(recovered if recovered is not None else float("inf"))
            self.check_dashboard(fault)
            self.log(
                f"{fault}: recovered in {self.results.recoveries[fault][-1]:.1f}s ({time.monotonic() - started:.0f}s)"
            )
        time.sleep(spacing)

    def kill_a_busy_worker(self):
        """SIGKILL a worker process in the middle of a job; recovered when that job's row
        moves on (another attempt claimed it, or it ended)."""
        from rq import Worker

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = wait_until(lambda: self.busy_workers(Worker), timeout=20, interval=0.05)
            if not busy:
                continue
            worker = random.choice(busy)
            row = self.row_of_job(worker.get_current_job_id())
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # it ended meanwhile (another fault's doing): pick another
            killed = time.monotonic()
            if row is None:
                return 0.0
            moved = wait_until(lambda row=row: self.row_moved_on(*row), timeout=KILL_GOAL, interval=0.2)
            if not moved:
                self.results.slow_kills.append(self.explained_kill(worker, row))
                moved = wait_until(lambda row=row: self.row_moved_on(*row), timeout=120 - KILL_GOAL, interval=0.2)
            return time.monotonic() - killed if moved else None
        return NOTHING_TO_KILL

    def explained_kill(self, worker, row):
        """What the killed worker's row, its attempts and Redis say once it is late to move on."""
        from jobs.worker import alive_key

        model, _, before = row
        kind = next((name for name, known in self.models().items() if known is model), "delivery")
        alive = self.stack.redis_client().exists(alive_key(worker.name))
        return {"worker": f"{worker.name} (pid {worker.pid}), liveness key {'still there' if alive else 'gone'}"} | (
            self.explained(kind, before["pk"])
        )

    def busy_workers(self, worker_class):
        """Workers busy with a job, as Redis says, whose process is alive: a killed worker's
        registration says "busy" until the watchdog forgets it."""
        workers = worker_class.all(connection=self.stack.redis_client())
        self.results.worker_pids.update({worker.name: worker.pid for worker in workers})
        return [worker for worker in workers if worker.get_state() == "busy" and worker.pid and alive(worker.pid)]

    def row_of_job(self, job_id):
        from jobs import lifecycle

        for kind in lifecycle._kinds.values():
            row = kind.model.objects.filter(job_id=job_id).values("pk", "status", "updated_at").first()
            if row:
                return kind.model, job_id, row
        return None

    @staticmethod
    def row_moved_on(model, job_id, before):
        now = model.objects.filter(pk=before["pk"]).values("status", "job_id", "attempts", "updated_at").first()
        return now and (now["status"] in FINAL or now["job_id"] != job_id or now["updated_at"] > before["updated_at"])

    def flush(self):
        """FLUSHALL: every queued job and registry is gone; the rows bring them back."""
        active = self.active_rows()
        self.forget(lambda pipe: pipe.flushall())
        return self.time_until_live(active)

    def restart_redis(self):
        """Redis restarted without persistence: like a flush, with a moment of no Redis."""
        active = self.active_rows()
        forgot = self.forget(lambda pipe: None, then=self.stack.stop_redis)
        self.stack.start_redis()
        forgot["back"] = time.time()
        return self.time_until_live(active)

    def outage(self):
        """Redis stopped a while: enqueueing answers 503 fast, reads work, health says
        degraded; then everything heals without a restart of web or workers."""
        active = self.active_rows()
        forgot = self.forget(lambda pipe: None, then=self.stack.stop_redis)
        started = time.monotonic()
        observed = []
        while time.monotonic() - started < self.plan.outage_seconds:
            observed.append(self.probe_outage())
            time.sleep(1)
        self.stack.start_redis()
        forgot["back"] = time.time()
        # Redis comes back empty: calls running now lost their leases too.
        self.results.redis_forgot.append(forgot["back"])
        self.results.outage = summarize_outage(observed)
        return self.time_until_live(active)

    def probe_outage(self):
        started = time.monotonic()
        enqueue = self.client.post(f"/api/v1/sources/{self.source}/fetch", json={})
        enqueue_seconds = time.monotonic() - started
        read = self.client.get("/api/v1/publishing/")
        health = httpx.get(f"{self.stack.url}/health", timeout=5)
        return {
            "enqueue": enqueue.status_code,
            "enqueue_seconds": enqueue_seconds,
            "read": read.status_code,
            "health": health.json().get("status"),
        }

    def kill_scheduler(self):
        """SIGKILL rqscheduler; a new one starts (as a supervisor would) and takes over."""
        process = self.stack.processes["scheduler"]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        killed = time.monotonic()
        self.stack.start_scheduler("scheduler")
        return self.time_until_periodic_run(killed)

    def two_schedulers(self):
        """A second rqscheduler beside the first for a while: nothing runs twice."""
        self.stack.start_scheduler("scheduler-2")
        started = time.monotonic()
        time.sleep(15)
        self.stack.stop_process("scheduler-2")
        return self.time_until_periodic_run(started)

    def time_until_periodic_run(self, since):
        """The reconciler runs every RECONCILE_INTERVAL: its next run proves the schedule."""
        from rq.registry import FinishedJobRegistry

        from jobs.queueing import get_queue

        def reconciled():
            registry = FinishedJobRegistry(queue=get_queue("maintenance", self.stack.redis_client()))
            return any(job_id.startswith("conveyor-reconcile") for job_id in registry.get_job_ids())

        self.stack.redis_client().delete(FinishedJobRegistry(queue=get_queue("maintenance")).key)
        return time.monotonic() - since if wait_until(reconciled, timeout=60) else None

    def shut_a_pool_down(self):
        """SIGTERM to a pool while it runs jobs: they finish, it exits within its grace."""
        name = random.choice(self.stack.pool_names())
        process = self.stack.processes[name]
        os.killpg(process.pid, signal.SIGTERM)
        started = time.monotonic()
        try:
            process.wait(int(self.stack.env["WORKER_SHUTDOWN_GRACE"]) + 10)
        except Exception:
            return None
        took = time.monotonic() - started
        self.stack.processes.pop(name)
        self.stack.start_pool(int(name.split("-")[1]))
        return took

    def kill_a_host(self):
        """A whole host dies (every process of one pool, SIGKILL); the others go on, and
        the rows it held are resumed. It comes back once they are."""
        name = random.choice(self.stack.pool_names())
        active = self.active_rows()
        self.stack.kill_host(name)
        recovered = self.time_until_live(active)
        self.stack.start_pool(int(name.split("-")[1]))
        return recovered

    def forget(self, in_transaction, then=lambda: None):
        """Make Redis forget (`in_transaction` adds FLUSHALL to the transaction that reads
        the publishing queue's leases, or `then` stops Redis right after it), noting which
        jobs held a lease: those run on without one until their workers take it again
        (check_limits). Returns that note."""
        from rq import Worker

        from jobs.concurrency import leases_key
        from publishing.services import QUEUE

        client = self.stack.redis_client()
        self.results.worker_pids.update({worker.name: worker.pid for worker in Worker.all(connection=client)})
        with client.pipeline() as pipe:
            pipe.zrange(leases_key(QUEUE), 0, -1)
            in_transaction(pipe)
            holders = pipe.execute()[0]
        then()
        moment = time.time()
        self.results.redis_forgot.append(moment)
        forgot = {"moment": moment, "back": moment, "jobs": [holder.decode() for holder in holders]}
        self.results.forgotten_leases.append(forgot)
        return forgot

    def active_rows(self):
        from jobs import lifecycle

        return [
            (kind.model, row)
            for kind in lifecycle._kinds.values()
            for row in kind.model.objects.filter(status__in=kind.active).values("pk", "job_id")
        ]

    def time_until_live(self, rows, timeout=120):
        """Seconds until each row active at the fault is finished or has a job in Redis again."""
        started = time.monotonic()

        def live():
            client = self.stack.redis_client()
            for model, row in rows:
                now = model.objects.filter(pk=row["pk"]).values("status", "job_id").first()
                if now["status"] not in FINAL and not client.exists(f"rq:job:{now['job_id']}"):
                    return False
            return True

        try:
            return time.monotonic() - started if wait_until(live, timeout=timeout, interval=0.5) else None
        except Exception:
            return None

    def check_dashboard(self, fault):
        """django-rq's worker count must come back to the true number after each fault."""
        from rq import Worker

        expected = self.stack.expected_workers
        seen = wait_until(lambda: Worker.count(connection=self.stack.redis_client()) == expected, timeout=30)
        count = Worker.count(connection=self.stack.redis_client())
        self.results.dashboard.append((fault, count, expected, bool(seen)))

    # --- the end --------------------------------------------------------------------------------

    def settle(self):
        """Wait for every accepted request to end, as long as rows keep moving: what is not
        final once nothing has moved for STILL_SECONDS (or at the plan's limit) is lost or stuck."""
        deadline = time.monotonic() + self.plan.settle_seconds
        last_move, last_seen = time.monotonic(), None
        while time.monotonic() < deadline and time.monotonic() - last_move < STILL_SECONDS:
            seen = self.unfinished()
            if not seen:
                break
            if seen != last_seen:
                last_move, last_seen = time.monotonic(), seen
            time.sleep(2)
        self.results.unfinished = self.unfinished()
        self.results.stuck = [self.explained(kind, pk) for kind, pk, _ in self.results.unfinished[:10]]
        for kind, model in self.models().items():
            for status in model.objects.filter(pk__in=self.results.rows[kind]).values_list("status", flat=True):
                self.results.final[f"{kind}: {status}"] += 1

    def explained(self, kind, pk):
        """What the row, its attempts and Redis say of an unfinished row: where to look."""
        from django.utils import timezone

        from alerts.models import AlertDelivery
        from jobs.models import Attempt

        model = AlertDelivery if kind == "delivery" else self.models()[kind]
        row = model.objects.filter(pk=pk).values().first()
        attempts = Attempt.objects.filter(content_type__model=model._meta.model_name, object_id=pk)
        return {
            "row": f"{kind} {pk}: {row['status']}, job {row['job_id']}, "
            f"untouched for {(timezone.now() - row['updated_at']).total_seconds():.0f}s",
            "attempts": [
                f"{outcome} {job_id[:8]} {started:%H:%M:%S}–{ended:%H:%M:%S} {error[:80]}"
                for outcome, job_id, started, ended, error in attempts.order_by("started_at").values_list(
                    "outcome", "job_id", "started_at", "ended_at", "error"
                )
            ],
            "job in Redis": self.job_whereabouts(row["job_id"]),
        }

    def job_whereabouts(self, job_id):
        """The job's hash fields that tell its state, and every key that holds its id."""
        client = self.stack.redis_client()
        fields = ("status", "origin", "worker_name", "enqueued_at", "started_at", "ended_at")
        values = client.hmget(f"rq:job:{job_id}", fields)
        state = {name: value.decode() for name, value in zip(fields, values) if value is not None}
        holders = []
        for name in client.scan_iter(count=1000):
            kind = client.type(name)
            held = (
                (kind == b"zset" and client.zscore(name, job_id) is not None)
                or (kind == b"list" and client.lpos(name, job_id) is not None)
                or (kind == b"set" and client.sismember(name, job_id))
            )
            if held:
                holders.append(name.decode())
        return {"hash": state, "held by": holders}

    def unfinished(self):
        return [
            (kind, pk, status)
            for kind, model in self.models().items()
            for pk, status in model.objects.filter(pk__in=self.results.rows[kind]).values_list("pk", "status")
            if status not in FINAL
        ] + self.unfinished_deliveries()

    def unfinished_deliveries(self):
        from alerts.models import AlertDelivery

        return [
            ("delivery", pk, status)
            for pk, status in AlertDelivery.objects.exclude(status__in=FINAL).values_list("pk", "status")
        ]

    @staticmethod
    def models():
        from aggregation.models import Fetch, UserAction
        from alerts.models import RuleRun
        from publishing.models import Publishing

        return {"publishing": Publishing, "fetch": Fetch, "run": RuleRun, "action": UserAction}

    def leaseless_jobs(self):
        """(worker pid, since, until) windows in which a job's `eas` calls may rightly run
        beside another's. A job that held a publishing lease when Redis forgot it runs without
        one until its worker's next heartbeat, once Redis answers again, takes it again
        (RETAKE_SECONDS); a job that started in that gap took the slot the first one still
        holds, and may run beside it until it ends. Any other overlap is the cap failing."""
        from jobs.models import Attempt
        from publishing.services import QUEUE

        windows = []
        for forgot in self.results.forgotten_leases:
            moment, retaken = forgot["moment"], forgot["back"] + RETAKE_SECONDS
            attempts = Attempt.objects.filter(queue=QUEUE)
            holders = attempts.filter(job_id__in=forgot["jobs"], started_at__lte=as_datetime(moment))
            for worker, ended_at in holders.values_list("worker", "ended_at"):
                windows.append((self.pid_of(worker), moment, min(ended_at.timestamp(), retaken)))
            in_the_gap = attempts.filter(started_at__gt=as_datetime(moment), started_at__lte=as_datetime(retaken))
            for worker, ended_at in in_the_gap.values_list("worker", "ended_at"):
                windows.append((self.pid_of(worker), moment, ended_at.timestamp()))
        return windows

    def pid_of(self, worker_name):
        # A worker the drill never saw (born and gone between its looks): None, any pid.
        return self.results.worker_pids.get(worker_name)

    def described(self, pair):
        """Two calls that ran at once, as times since the load began, with the faults of the
        10 s before the later one: what to look at when the cap did not hold."""
        started = self.results.started

        def call(run):
            return f"{' '.join(run['argv'][:2])} by pid {run['parent']} {run['start'] - started:.2f}–{run['end'] - started:.2f}s"

        later = pair[1]["start"]
        faults = [
            f"{fault} at {moment - started:.2f}s" for moment, fault in self.results.faults if 0 <= later - moment <= 10
        ]
        return {"calls": [call(run) for run in pair], "faults just before": faults}

    def count_duplicates(self):
        """Outside effects done more than once, counted where they land: at the stand-ins."""
        # What EAS took, not the CLI's calls: a call killed with its worker before EAS took
        # the submission submitted nothing, and its retry rightly submits.
        submits = Counter(submission["submittedBuild"]["id"] for submission in self.stack.eas.submissions())
        likes = Counter(request["path"] for request in self.stack.platforms.requests("/api/v1/statuses/"))
        deliveries = Counter(json.loads(call["body"]).get("delivery") for call in self.stack.outside.hook_calls("c"))
        self.results.duplicates = {
            "builds submitted twice": sum(1 for count in submits.values() if count > 1),
            "likes sent twice": sum(1 for path, count in likes.items() if path.endswith("/favourite") and count > 1),
            "alerts delivered twice": sum(1 for count in deliveries.values() if count > 1),
        }
        from alerts.models import AlertDelivery

        self.results.duplicates["deliveries made"] = AlertDelivery.objects.count()

    def check_limits(self):
        """The publishing queue's cap (one build step at a time) and the watched pages'
        per-domain rate limit, across every host, as the stand-ins saw them."""
        from jobs.policies import policy_for

        runs = self.stack.eas.runs()
        ended = [run for run in runs if run["end"] is not None]
        clear = outside_of(ended, [(None, moment, moment) for moment in self.results.redis_forgot])
        counted = outside_of(clear, self.leaseless_jobs())
        overlaps = [len(overlapping_pairs(calls)) for calls in (ended, clear, counted)]
        self.results.limits["eas calls at once"] = {
            "most": most_at_once([(run["start"], run["end"]) for run in counted]),
            "limit": policy_for("publishing-builds").concurrency,
            "calls": len(runs),
            "killed before they ended (not counted)": len(runs) - len(ended),
            "running when Redis forgot (not counted)": len(ended) - len(clear),
            "later, before its lease was taken again, or in a job started meanwhile (not counted)": len(clear)
            - len(counted),
            # What leaving those out hides: overlaps with a call that ran without its lease.
            "overlaps left out, with a call running when Redis forgot": overlaps[0] - overlaps[1],
            "overlaps left out, with such a later call": overlaps[1] - overlaps[2],
            "overlaps": [self.described(pair) for pair in overlapping_pairs(counted)[:5]],
        }
        rate = policy_for("rules-run").rate_limit
        fetched = [request["at"] for request in self.stack.outside.requests("/page/rule") if request["method"] == "GET"]
        counts = windows(fetched, rate.per_seconds, skip_near=self.results.redis_forgot)
        self.results.limits[f"page fetches per {rate.per_seconds - GRANT_TO_FETCH_SLACK:g} s"] = {
            "most": max(counts, default=0),
            "limit": rate.starts,
            "fetches": len(fetched),
            "windows at the limit": counts.count(rate.starts),
        }


FAULTS = {
    "kill": Drill.kill_a_busy_worker,
    "flush": Drill.flush,
    "redis restart": Drill.restart_redis,
    "outage": Drill.outage,
    "scheduler kill": Drill.kill_scheduler,
    "two schedulers": Drill.two_schedulers,
    "pool shutdown": Drill.shut_a_pool_down,
    "host down": Drill.kill_a_host,
}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def summarize_outage(observed):
    return {
        "enqueue answers": dict(Counter(probe["enqueue"] for probe in observed)),
        "slowest enqueue answer (s)": round(max((probe["enqueue_seconds"] for probe in observed), default=0), 2),
        "read answers": dict(Counter(probe["read"] for probe in observed)),
        "health": dict(Counter(probe["health"] for probe in observed)),
    }


def as_datetime(moment):
    return datetime.fromtimestamp(moment, tz=UTC)
