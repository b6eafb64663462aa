"""Logs: levels in any case, a clear error for a bad one, one line per job event (JSON lines
with LOG_FORMAT=json), and errors to Sentry only when SENTRY_DSN is set."""

import json
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR, wait_for
from tests.fakes.sentry import FakeSentry
from tests.publishing.conftest import wait_until_finished

JOB_FIELDS = {"queue", "job_id", "row_kind", "row_id", "attempt"}


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("level", ["debug", "Info", "warning"])
def test_log_levels_are_accepted_in_any_case(processes, level):
    result = manage("check", env=processes.environment({"LOG_LEVEL": level, "RQ_LOG_LEVEL": level}))
    assert result.returncode == 0, result.stderr


def test_a_worker_starts_with_lower_case_levels(processes):
    worker = processes.start("rqworker", "--burst", "notifications", env={"LOG_LEVEL": "debug", "RQ_LOG_LEVEL": "info"})
    assert worker.wait(60) == 0, processes.logs()
    assert " DEBUG " in processes.logs()


@pytest.mark.parametrize("variable", ["LOG_LEVEL", "RQ_LOG_LEVEL", "LOG_FORMAT"])
def test_a_bad_value_stops_the_start_naming_the_variable(processes, variable):
    result = manage("check", env=processes.environment({variable: "loud"}))
    assert result.returncode != 0
    assert f"{variable} must be one of" in result.stderr.splitlines()[-1]


@pytest.fixture
def publish(api):
    """Ask for a publishing through the API; its id."""
    project = api.create_project()

    def publish():
        response = api.initiate(project)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    return publish


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_lines_carry_each_job_events_fields(publish, fake_eas, processes, fast_publishing_policy):
    fake_eas.configure(build_fail=1, polls_until_done=0)
    publishing_id = publish()
    processes.worker("publishing-builds", env={"LOG_FORMAT": "json"})
    assert wait_until_finished(publishing_id).status == "succeeded"

    lines = json_lines(processes.logs())
    events = [line for line in lines if line.get("row_id") == publishing_id]
    assert [line["event"] for line in events[:3]] == ["job_start", "job_retry", "job_start"]
    assert [line["event"] for line in events[-2:]] == ["job_start", "job_end"]
    retry, end = events[1], events[-1]
    assert JOB_FIELDS <= set(retry) and retry["level"] == "WARNING" and "build command failed" in retry["error"]
    assert (retry["attempt"], events[2]["attempt"]) == (1, 2)
    assert end["row_kind"] == "publishing.Publishing" and end["queue"] == "publishing-builds"
    assert end["outcome"] == "succeeded" and end["duration"] > 0 and end["level"] == "INFO"
    assert {line["time"][-6:] for line in lines} == {"+00:00"}
    assert all(line.keys() >= {"time", "level", "logger", "message"} for line in lines)


def test_without_sentry_dsn_sentry_sdk_is_never_imported(processes):
    code = "import django, sys; django.setup(); print('sentry_sdk' in sys.modules)"
    env = processes.environment({"DJANGO_SETTINGS_MODULE": "config.settings", "SENTRY_DSN": ""})
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_with_sentry_dsn_the_django_and_rq_integrations_are_on(processes, sentry):
    code = (
        "import django, sentry_sdk; django.setup(); "
        "print(sorted(name for name in ('django', 'rq') if sentry_sdk.get_client().integrations.get(name)))"
    )
    env = processes.environment({"DJANGO_SETTINGS_MODULE": "config.settings", "SENTRY_DSN": sentry.dsn})
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "['django', 'rq']", result.stderr


@pytest.fixture
def sentry():
    server = FakeSentry().start()
    yield server
    server.stop()


def test_a_job_that_fails_for_good_is_reported_to_sentry(publish, fake_eas, processes, fast_publishing_policy, sentry):
    fake_eas.configure(final_status="ERRORED", error_message="Gradle went up in smoke", polls_until_done=0)
    publishing_id = publish()
    processes.worker("publishing-builds", env={"SENTRY_DSN": sentry.dsn})
    assert wait_until_finished(publishing_id).status == "failed"

    wait_for(lambda: any("RowFailed" in envelope["body"] for envelope in sentry.envelopes), message="a Sentry event")
    event = next(envelope["body"] for envelope in sentry.envelopes if "RowFailed" in envelope["body"])
    assert "Gradle went up in smoke" in event and "publishing.jobs.publishing_advance" in event
    assert all(envelope["path"] == "/api/1/envelope/" for envelope in sentry.envelopes)
