"""Run work on hostile input in a helper process under hard limits: time, CPU, memory, size.

Why a process: lxml evaluates XPath (and CSS compiled to XPath) in C without coming back
to Python, so a job timeout's SIGALRM never runs and a cubic expression pins the worker
for good, while its liveness thread keeps it "alive". A process can be killed; a thread
cannot. The helper is:

- killed when it does not answer within the wall-clock budget (the caller gets
  LimitExceeded at once and the worker goes on with its next job);
- held to RLIMIT_CPU (the budget, per task) and RLIMIT_AS (its memory), so it dies by
  itself even when the worker that watched it was killed;
- started from a fresh interpreter with an empty environment and no inherited file
  descriptors: none of the service's secrets, settings or connections are in it;
- reused from task to task: starting Python with lxml costs ~100 ms, a round trip to a
  live helper well under a millisecond (bench/extract.py measures both).

The protocol is length-prefixed JSON both ways (never pickle: the helper's answers are
as untrusted as the input it read).
"""

import atexit
import importlib
import json
import math
import os
import resource
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HEADER = struct.Struct("!I")
# The request carries the page: a little over OUTBOUND_MAX_BYTES once JSON-escaped.
MAX_REQUEST_BYTES = 64 * 1024 * 1024


class LimitExceeded(Exception):
    """The task went over a limit; `limit` names it ("time", "cpu", "memory", "size")."""

    def __init__(self, limit, message):
        super().__init__(message)
        self.limit = limit


class TaskFailed(Exception):
    """The task itself raised: its message, as the helper reported it."""


@dataclass(frozen=True)
class Limits:
    seconds: float
    memory_bytes: int
    reply_bytes: int


class Helper:
    """One reusable helper process running `target` ("module:function") on JSON requests.

    Thread-safe (one task at a time) and fork-aware: a forked worker starts its own helper.
    """

    def __init__(self, target):
        self.target = target
        self.lock = threading.Lock()
        self.process = None
        self.owner_pid = None
        self.memory_bytes = None
        atexit.register(self.stop)

    def call(self, payload, limits):
        """The task's answer to `payload`; LimitExceeded or TaskFailed otherwise."""
        with self.lock:
            self.ensure_started(limits.memory_bytes)
            reusable = False
            try:
                reply = self.exchange(payload, limits)
                # A helper that ran out of memory answers, then exits.
                reusable = not (isinstance(reply, dict) and "limit" in reply)
            finally:
                # A timeout, a job timeout's exception, a dead helper: never reuse a helper
                # that may still be working on the last task.
                if not reusable:
                    self.kill()
        return answer_of(reply, limits)

    def ensure_started(self, memory_bytes):
        if self.owner_pid != os.getpid():
            self.process = None  # inherited across fork: the parent's helper, not ours
        if self.process is not None and (self.process.poll() is not None or self.memory_bytes != memory_bytes):
            self.kill()
        if self.process is None:
            self.process = start_helper(self.target, memory_bytes)
            self.owner_pid, self.memory_bytes = os.getpid(), memory_bytes

    def exchange(self, payload, limits):
        request = encode({"payload": payload, "cpu_seconds": math.ceil(limits.seconds)})
        deadline = time.monotonic() + limits.seconds
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self.death() from None
        reply = read_message(self.process.stdout, deadline, limits.reply_bytes)
        if reply is TIMED_OUT:
            raise LimitExceeded("time", f"took longer than {limits.seconds:g} s")
        if reply is TOO_LARGE:
            raise LimitExceeded("size", f"answered more than {limits.reply_bytes} bytes")
        if reply is None:
            raise self.death()
        return reply

    def death(self):
        """The exception for a helper that died in the middle of a task."""
        returncode = self.process.wait()
        if returncode == -signal.SIGXCPU:
            return LimitExceeded("cpu", "used up its CPU time")
        return LimitExceeded("memory", f"died (exit status {returncode}), most likely out of memory")

    def kill(self):
        if self.process is None or self.owner_pid != os.getpid():
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()
        self.process = None

    def stop(self):
        with self.lock:
            self.kill()


def start_helper(target, memory_bytes):
    return subprocess.Popen(
        [sys.executable, "-s", "-m", "core.confined", target, str(memory_bytes)],
        cwd=BASE_DIR,
        env={"PATH": os.defpath, "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
        # Its own session: a Ctrl-C meant for the worker does not kill a task half-way;
        # it ends when its stdin closes (the worker exited) or at its CPU limit.
        start_new_session=True,
    )


def answer_of(reply, limits):
    if not isinstance(reply, dict):
        raise TaskFailed("the helper sent a malformed answer")
    if "ok" in reply:
        return reply["ok"]
    if reply.get("limit") == "memory":
        raise LimitExceeded("memory", f"needed more than {limits.memory_bytes // 2**20} MB")
    raise TaskFailed(str(reply.get("error", "the helper sent a malformed answer")))


def encode(message):
    # ASCII-escaped: a page may hold lone surrogates, which UTF-8 cannot encode.
    body = json.dumps(message).encode()
    return HEADER.pack(len(body)) + body


TIMED_OUT, TOO_LARGE = object(), object()


def read_message(stream, deadline, max_bytes):
    """One message from `stream` before `deadline`: the decoded JSON, None at end of file,
    TIMED_OUT or TOO_LARGE."""
    fd = stream.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        header = read_exactly(fd, selector, HEADER.size, deadline)
        if header in (None, TIMED_OUT):
            return header
        (size,) = HEADER.unpack(header)
        if size > max_bytes:
            return TOO_LARGE
        body = read_exactly(fd, selector, size, deadline)
    if body in (None, TIMED_OUT):
        return body
    return json.loads(body)


def read_exactly(fd, selector, size, deadline):
    chunks, missing = [], size
    while missing:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            return TIMED_OUT
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


# --- a command under rlimits, tied to its parent ----------------------------------------------

# Set the limits and tie the command to its parent's life, then become the command: no
# preexec_fn (unsafe in a process with threads, as workers are), and the command's own
# children inherit the limits. PR_SET_PDEATHSIG (Linux) sends the command SIGKILL when its
# parent dies; a parent already gone is caught by comparing parents after the call.
COMMAND_SHIM = (
    "import os, resource, sys\n"
    "parent = int(sys.argv[1])\n"
    "if parent:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None).prctl(1, 9)\n"
    "    if os.getppid() != parent:\n"
    "        os._exit(137)\n"
    "for name, value in zip(sys.argv[2:5], sys.argv[5:8]):\n"
    "    if value != '-':\n"
    "        resource.setrlimit(getattr(resource, name), (int(value), int(value)))\n"
    "os.execvp(sys.argv[8], sys.argv[8:])\n"
)


def confined_command(argv, *, file_bytes=None, memory_bytes=None, cpu_seconds=None):
    """`argv` to run under RLIMIT_FSIZE, RLIMIT_AS and RLIMIT_CPU (None: unchanged), killed
    when the process that starts it dies: a worker killed with SIGKILL (the OOM killer, a
    deploy) leaves no command of a job running on behind the back of the job's next try.
    The parent is this process, so start the command from this process's main thread (the
    signal follows the thread that forked it)."""
    names = ["RLIMIT_FSIZE", "RLIMIT_AS", "RLIMIT_CPU"]
    values = ["-" if value is None else str(value) for value in (file_bytes, memory_bytes, cpu_seconds)]
    parent = os.getpid() if sys.platform.startswith("linux") else 0
    return [sys.executable, "-I", "-S", "-c", COMMAND_SHIM, str(parent), *names, *values, *argv]


# --- inside the helper ---------------------------------------------------------------------


def serve(target, memory_bytes):
    """The helper's loop: read a request, run it under its CPU budget, answer; exit at EOF."""
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() in a library must not corrupt the protocol
    while (request := read_request(requests)) is not None:
        allow_cpu_seconds(request["cpu_seconds"])
        reply, fatal = run_task(function, request["payload"])
        replies.write(encode(reply))
        replies.flush()
        if fatal:
            return


def read_request(stream):
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_REQUEST_BYTES:
        return None
    return json.loads(stream.read(size))


def allow_cpu_seconds(seconds):
    """RLIMIT_CPU counts the process's whole life: allow `seconds` more than used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def run_task(function, payload):
    """(reply, fatal): a helper that ran out of memory answers, then exits."""
    try:
        return {"ok": function(payload)}, False
    except MemoryError:
        return {"limit": "memory"}, True
    except RecursionError:
        return {"error": "the document is nested too deeply"}, False
    except Exception as exc:
        return {"error": str(exc) or type(exc).__name__}, False


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
