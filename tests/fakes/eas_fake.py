"""Drive tests/fakes/eas from a test: tell it how to behave, read what it was asked."""

import fcntl
import json
import sys
from pathlib import Path

EXECUTABLE = Path(__file__).resolve().parent / "eas"


class FakeEas:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.executable = str(self.launcher())

    def launcher(self):
        """An `eas` in this directory that runs the fake and tells it this directory: the
        CLI's environment is allow-listed, so no FAKE_EAS_DIR would reach it. It names this
        Python directly: an `env python3` shim (pyenv) would add variables of its own."""
        path = self.directory / "eas"
        path.write_text(
            f"#!{sys.executable}\nimport runpy\n"
            f"runpy.run_path({str(EXECUTABLE)!r}, init_globals={{'LAUNCHED_FOR': {str(self.directory)!r}}}, run_name='__main__')\n"
        )
        path.chmod(0o755)
        return path

    def configure(self, **config):
        """build_fail / view_fail / submit_fail: crash the first N calls of that command;
        submit_fail_calls: crash these calls of `eas submit` (1 is the first);
        build_hang_seconds: sleep before answering `eas build`; submit_hang_seconds: sleep
        after EAS took a submission, before the CLI prints it; polls_until_done: how many
        `build:view` calls see a build still running (default 2); final_status: FINISHED,
        ERRORED or CANCELED; error_message: the error of an ERRORED build."""
        (self.directory / "config.json").write_text(json.dumps(config))

    def submissions(self):
        """The submissions EAS holds (what `eas submit` took), newest first: a CLI killed
        before it got that far submitted nothing."""
        # Under the lock the fake writes it under: a read mid-write would see half a file.
        with open(self.directory / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            path = self.directory / "state.json"
            return json.loads(path.read_text()).get("submissions", []) if path.exists() else []

    def calls(self):
        path = self.directory / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def intervals(self):
        """(started, ended) of every invocation that exited; a killed one has no end."""
        return [(run["start"], run["end"]) for run in self.runs()]

    def runs(self):
        """Every invocation: its start, its end (None for a killed one), the worker process
        that ran it (parent) and its command."""
        path = self.directory / "ends.jsonl"
        ends = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        ended = {end["id"]: end["time"] for end in ends}
        return [
            {"start": call["time"], "end": ended.get(call["id"]), "parent": call.get("parent"), "argv": call["argv"]}
            for call in self.calls()
        ]

    def environments(self):
        """Every variable any call was given (EXPO_TOKEN's value never recorded)."""
        return [call["environment"] for call in self.calls()]

    def calls_of(self, command):
        return [call for call in self.calls() if call["command"] == command]
