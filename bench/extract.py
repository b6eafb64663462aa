"""Extraction: what running it under hard limits costs per call, against doing it in the
worker's own process (no limit at all), for a small and a large page.

Ways to put a kill-able process around one extraction, all measured in this run:

- helper, reused: alerts.extract.extract as it runs in a worker: one helper process per
  worker (core.confined), reused from call to call;
- fork per call: the worker forks, the child sets its rlimits, extracts and answers on a pipe;
- new process per call: a fresh helper for each call (what a spawn per extraction costs).
"""

import os
import resource
import time

PROCESSES_PER_CALL = 20
SMALL = "<html><body><h1>Widget</h1><div id='price'>$ 10.00</div>" + "<p>filler text</p>" * 200 + "</body></html>"
LARGE = "<html><body><div id='price'>$ 10.00</div>" + "<p>filler text</p>" * 20000 + "</body></html>"


def per_call_ms(function, calls):
    function()  # warm: the helper started, lxml's caches filled
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return 1000 * (time.perf_counter() - started) / calls


def in_process(page):
    from alerts import extract

    return lambda: extract.extract_here("css", "#price", page, 10**6)


def reused_helper(page):
    from alerts import extract

    return lambda: extract.extract("css", "#price", page)


def fork_per_call(page):
    from alerts import extract

    def call():
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_CPU, (5, 5))
            os.write(write_end, extract.extract_here("css", "#price", page, 10**6).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            answer.read()
        os.waitpid(pid, 0)

    return call


def new_process_per_call(page):
    from alerts import extract

    def call():
        extract.HELPER.stop()
        extract.extract("css", "#price", page)

    return call


VARIANTS = [
    ("in the worker (no limit)", in_process, None),
    ("helper, reused", reused_helper, None),
    ("fork per call", fork_per_call, None),
    ("new process per call", new_process_per_call, PROCESSES_PER_CALL),
]


def run(env, calls=1000):
    results = {}
    for name, variant, fixed_calls in VARIANTS:
        for size, page in (("small", SMALL), ("large", LARGE)):
            count = fixed_calls or (calls if size == "small" else calls // 20)
            results[(name, size)] = per_call_ms(variant(page), count)
    return {"calls": calls, "ms": results}


def report(results):
    ms = results["ms"]
    base = {size: ms[(VARIANTS[0][0], size)] for size in ("small", "large")}
    print(f"\nextraction, ms per call (CSS #price; small page {len(SMALL) // 1024} KB, large {len(LARGE) // 1024} KB)")
    print("                             small   vs worker     large   vs worker")
    for name, _, _ in VARIANTS:
        small, large = ms[(name, "small")], ms[(name, "large")]
        print(
            f"  {name:<25} {small:>8.2f} {small / base['small']:>10.1f}× {large:>8.2f} {large / base['large']:>10.1f}×"
        )


if __name__ == "__main__":
    from bench.common import main

    main(__doc__, run, report, "calls", 1000)
