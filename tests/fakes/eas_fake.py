"""Drive tests/fakes/eas from a test: tell it how to behave, read what it was asked."""

import json
from pathlib import Path

EXECUTABLE = Path(__file__).resolve().parent / "eas"


class FakeEas:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.executable = str(EXECUTABLE)

    def configure(self, **config):
        """build_fail / view_fail / submit_fail: crash the first N calls of that command;
        submit_fail_calls: crash these calls of `eas submit` (1 is the first);
        build_hang_seconds: sleep before answering `eas build`; polls_until_done: how many
        `build:view` calls see a build still running (default 2); final_status: FINISHED,
        ERRORED or CANCELED; error_message: the error of an ERRORED build."""
        (self.directory / "config.json").write_text(json.dumps(config))

    def calls(self):
        path = self.directory / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def calls_of(self, command):
        return [call for call in self.calls() if call["command"] == command]
