"""The bounded chaos drill (`python -m chaos --bounded`): the whole stack as `make run`
starts it, under load, with workers killed mid-job and Redis flushed. Nothing accepted may
be lost or stuck, no outside effect may happen twice, every recovery meets its goal and
django-rq's dashboard counts the true number of workers after each fault. `make chaos`
runs the full drill."""

import json
import subprocess
import sys

import pytest

from chaos.limits import most_at_once, outside_of, overlapping_pairs, windows
from tests.conftest import BASE_DIR


def test_most_at_once_counts_overlaps_and_not_a_call_that_ends_as_the_next_begins():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 3), (1, 2), (1.5, 4), (3.5, 5)]) == 3
    assert most_at_once([]) == 0


def test_windows_count_starts_and_leave_out_the_moments_redis_forgot():
    starts = [0, 1, 2, 3, 10, 10.2, 10.4]
    assert windows(starts, 3.5, slack=0.5) == [3, 3, 2, 1, 3, 2, 1]
    # Windows near a flush at 10.1 are left out: counts before it no longer count after it.
    assert windows(starts, 3.5, skip_near=[10.1], slack=0.5) == [3, 3, 2, 1]


def test_calls_of_jobs_whose_lease_redis_forgot_are_left_out_of_the_cap():
    def call(parent, start, end):
        return {"parent": parent, "start": start, "end": end}

    calls = [call(1, 0, 2), call(2, 1.5, 3), call(1, 3.5, 5), call(2, 4, 6), call(1, 7, 8), call(2, 7.5, 9)]
    assert most_at_once([(run["start"], run["end"]) for run in calls]) == 2
    assert len(overlapping_pairs(calls)) == 3
    # A flush at 1.8 took the lease of worker 1's job, which ran until 5: its calls, and
    # any call running at 1.8, are left out; worker 1's next job (7-8) counts again.
    leaseless = [(None, 1.8, 1.8), (1, 1.8, 5)]
    counted = outside_of(calls, leaseless)
    assert counted == [call(2, 4, 6), call(1, 7, 8), call(2, 7.5, 9)]
    assert overlapping_pairs(counted) == [(call(1, 7, 8), call(2, 7.5, 9))]


@pytest.mark.longest
def test_the_bounded_drill_loses_nothing_and_does_nothing_twice(tmp_path):
    figures_path = tmp_path / "chaos.json"
    drill = subprocess.run(
        [sys.executable, "-m", "chaos", "--bounded", "--json", str(figures_path)],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert figures_path.exists(), drill.stdout[-3000:] + drill.stderr[-3000:]
    figures = json.loads(figures_path.read_text())

    assert figures["requests accepted"] > 50, figures
    assert figures["lost or stuck"] == [], figures
    assert figures["ended in a final state"] == figures["requests accepted"]
    duplicates = figures["duplicate outside effects"]
    assert duplicates["builds submitted twice"] == duplicates["likes sent twice"] == 0, duplicates
    assert duplicates["alerts delivered twice"] == 0, duplicates
    assert figures["longest recovery (s)"]["kill"] <= 30 and figures["longest recovery (s)"]["flush"] <= 60
    assert all(entry[3] for entry in figures["dashboard workers after each fault"]), figures
    limits = figures["limits across hosts"]
    fetches = limits["page fetches per 5.5 s"]
    assert fetches["fetches"] > 0 and fetches["most"] <= fetches["limit"] == 6, limits
    assert limits["eas calls at once"]["calls"] > 0, limits
    assert limits["eas calls at once"]["most"] <= 1, limits["eas calls at once"]
    assert figures["goals met"] and drill.returncode == 0, drill.stdout[-3000:]
