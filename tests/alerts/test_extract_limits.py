"""Extraction under hard limits: a hostile expression or page fails with an error naming
the limit it hit, the helper process that ran it is killed, and the worker goes on."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from alerts import extract
from alerts.extract import ExtractError
from alerts.models import RuleRun
from core import confined
from tests.alerts.conftest import page_with_price
from tests.conftest import wait_for

# Cubic in the number of elements: on 50,000 of them, longer than anyone will wait.
CUBIC_XPATH = "count(//*[count(//*[count(//*)>0])>0])"
LARGE_PAGE = "<html><body>" + "<p>x</p>" * 50_000 + "</body></html>"
CATASTROPHIC_REGEX = r"(a+)+$"
BACKTRACKING_TEXT = "a" * 40 + "!"
# About 5 MB of JSON (the most a page may weigh), and a filter that visits every node.
HUGE_JSON = json.dumps({"items": [{"id": n, "v": n * 1.5, "tags": ["a", "b"]} for n in range(100_000)]})
SLOW_JSONPATH = "$..[?(@.v > 10)].id"


def helper_pid():
    extract.extract("css", "p", "<p>warm</p>")
    return extract.HELPER.process.pid


def is_gone(pid):
    """The process has exited and been reaped (or is a zombie nobody has reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def assert_stopped_within(seconds, function, message):
    started = time.monotonic()
    with pytest.raises(ExtractError, match=message):
        function()
    assert time.monotonic() - started < seconds


def test_a_cubic_xpath_on_a_large_page_is_stopped_at_the_time_limit(settings):
    settings.EXTRACT_TIMEOUT = 1
    before = helper_pid()
    assert_stopped_within(
        3, lambda: extract.extract("xpath", CUBIC_XPATH, LARGE_PAGE), r"took longer than 1 s \(limit: EXTRACT_TIMEOUT\)"
    )
    assert is_gone(before), "the helper stuck in the XPath was not killed"
    # The next extraction gets a new helper and is as quick as ever.
    assert_ok_quickly()


def assert_ok_quickly():
    started = time.monotonic()
    assert extract.extract("css", "#price", page_with_price("$ 5")) == "$ 5"
    assert time.monotonic() - started < 2


def test_a_catastrophic_regex_is_stopped_at_the_time_limit(settings):
    settings.EXTRACT_TIMEOUT = 1
    assert_stopped_within(
        3, lambda: extract.extract("regex", CATASTROPHIC_REGEX, BACKTRACKING_TEXT), "limit: EXTRACT_TIMEOUT"
    )
    assert_ok_quickly()


def test_a_catastrophic_ignore_pattern_is_stopped_at_the_time_limit(settings):
    settings.EXTRACT_TIMEOUT = 1
    options = extract.Normalisation(ignore_patterns=(CATASTROPHIC_REGEX,))
    assert_stopped_within(3, lambda: extract.normalise(BACKTRACKING_TEXT, options), "limit: EXTRACT_TIMEOUT")
    assert extract.normalise("Widget  $10 Updated 10:00", extract.Normalisation(ignore_patterns=(r"Upd\S+",))) == (
        "Widget $10 10:00"
    )


def test_a_jsonpath_over_a_huge_document_is_stopped_at_the_time_limit(settings):
    settings.EXTRACT_TIMEOUT = 1
    assert_stopped_within(3, lambda: extract.extract("jsonpath", SLOW_JSONPATH, HUGE_JSON), "limit: EXTRACT_TIMEOUT")
    assert_ok_quickly()


def test_a_document_that_needs_too_much_memory_is_stopped_at_the_memory_limit(settings):
    settings.EXTRACT_MAX_MEMORY_MB = 80
    with pytest.raises(ExtractError, match="limit: EXTRACT_MAX_MEMORY_MB"):
        extract.extract("jsonpath", SLOW_JSONPATH, HUGE_JSON)
    assert_ok_quickly()


def test_an_extracted_text_past_the_size_limit_is_an_error(settings):
    settings.EXTRACT_MAX_TEXT = 10_000
    # Every nested element's text, each holding all that is inside it: quadratic output
    # (200 deep: lxml's HTML parser drops what is nested deeper than 255).
    nested = "<div>" * 200 + "x" * 100 + "</div>" * 200
    with pytest.raises(ExtractError, match="longer than 10000 characters"):
        extract.extract("xpath", "//div", nested)


def test_an_xpath_that_computes_a_value_gives_its_text():
    assert extract.extract("xpath", "count(//li)", "<ul><li>a</li><li>b</li></ul>") == "2.0"


def test_an_orphaned_helper_dies_at_its_cpu_limit():
    """The backstop when nobody watches the clock (the worker was killed with SIGKILL)."""
    helper = confined.start_helper("alerts.extract:run_task", 512 * 2**20)
    request = {"task": "extract", "kind": "xpath", "expression": CUBIC_XPATH, "body": LARGE_PAGE, "max_text": 100}
    helper.stdin.write(confined.encode({"payload": request, "cpu_seconds": 1}))
    helper.stdin.flush()
    try:
        returncode = helper.wait(timeout=15)
    except subprocess.TimeoutExpired:
        helper.kill()
        raise
    finally:
        helper.stdin.close()
        helper.stdout.close()
    assert returncode == -signal.SIGXCPU


def test_the_helper_gets_no_secret_of_the_service(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "do-not-leak-this")
    extract.HELPER.stop()
    pid = helper_pid()
    environment = Path(f"/proc/{pid}/environ").read_bytes().decode()
    assert "do-not-leak-this" not in environment
    names = sorted(item.split("=")[0] for item in environment.split("\0") if item)
    assert names == ["LC_ALL", "PATH", "PYTHONDONTWRITEBYTECODE"]


# --- in a real worker process -----------------------------------------------------------------


def process_table():
    """{pid: (ppid, state, CPU ticks)} of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[0], int(fields[11]) + int(fields[12]))
    return table


def descendants(pid):
    table, found, frontier = process_table(), set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def cpu_ticks(pids):
    table = process_table()
    return sum(table[pid][2] for pid in pids if pid in table)


def test_the_worker_fails_the_hostile_run_at_once_and_goes_on_with_the_next(
    api, outside, rule_for, processes, fast_alert_policies
):
    hostile = rule_for(outside.set_page("large", LARGE_PAGE), extractor="xpath", expression=CUBIC_XPATH)
    fine = rule_for(outside.set_page("fine", page_with_price("$ 3")))
    policy = json.dumps(fast_alert_policies["rules-run"])
    worker = processes.worker("rules-run", env={"EXTRACT_TIMEOUT": "2", "CONVEYOR_QUEUE_RULES_RUN_JSON": policy})
    bad = api.post(f"/api/v1/rules/{hostile['id']}/run").json()["run"]
    wait_for(lambda: RuleRun.objects.get(pk=bad).status == "running", timeout=30, message="the hostile run")
    # One worker process: the fine run can only start once the hostile one has let go.
    good = api.post(f"/api/v1/rules/{fine['id']}/run").json()["run"]

    wait_for(lambda: RuleRun.objects.get(pk=good).status == "succeeded", timeout=30, message="the fine run")

    failed = RuleRun.objects.get(pk=bad)
    assert failed.status == "failed" and failed.attempts == 1
    assert RuleRun.objects.get(pk=good).started_at >= failed.finished_at
    assert "took longer than 2 s (limit: EXTRACT_TIMEOUT)" in failed.error
    assert (failed.finished_at - failed.started_at).total_seconds() < 10
    assert worker.poll() is None
    # What is left under the worker is idle: no helper still grinding at the XPath.
    left = descendants(worker.pid)
    before = cpu_ticks(left)
    time.sleep(1)
    assert cpu_ticks(left) - before < 20, "a process under the worker is still busy"
