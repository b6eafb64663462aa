"""The bounded chaos drill (`python -m chaos --bounded`): the whole stack as `make run`
starts it, under load, with workers killed mid-job and Redis flushed. Nothing accepted may
be lost or stuck, no outside effect may happen twice, every recovery meets its goal and
django-rq's dashboard counts the true number of workers after each fault. `make chaos`
runs the full drill."""

import json
import subprocess
import sys

from tests.conftest import BASE_DIR


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
    assert figures["goals met"] and drill.returncode == 0, drill.stdout[-3000:]
