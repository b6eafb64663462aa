"""A client for the Expo EAS CLI (`EAS_CLI`, default `eas`).

Secrets reach the CLI only through the child's environment (EXPO_TOKEN) or files in a
private temporary directory, never its arguments, and are scrubbed from any error text
that is stored or logged.
"""

import json
import logging
import os
import re
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core.errors import ExplainedError

log = logging.getLogger("conveyor.publishing.eas")

FINAL_STATUSES = {"FINISHED", "ERRORED", "CANCELED"}
FAILED_STATUSES = {"ERRORED", "CANCELED"}
SUBMISSION_URL = re.compile(r"/submissions/([0-9a-fA-F-]{36})")
ERROR_TAIL = 2000


class EasCommandError(ExplainedError):
    """The CLI crashed, timed out or printed something we cannot read: worth retrying."""


@dataclass(frozen=True)
class Credentials:
    expo_token: str
    asc_api_key: str = ""
    asc_key_id: str = ""
    asc_issuer_id: str = ""

    @classmethod
    def from_dict(cls, data):
        fields = {name: data.get(name, "") for name in cls.__dataclass_fields__}
        return cls(**fields)

    def secrets(self):
        return [value for value in (self.expo_token, self.asc_api_key) if value]


def scrub(text, credentials):
    for secret in credentials.secrets():
        text = text.replace(secret, "[secret]")
    return text


@contextmanager
def child_environment(credentials):
    """The environment of one CLI call: ours, plus the token and key files it needs."""
    env = {**os.environ, "EXPO_TOKEN": credentials.expo_token, "EAS_NO_VCS": "1", "CI": "1"}
    with tempfile.TemporaryDirectory(prefix="conveyor-eas-") as private_dir:
        if credentials.asc_api_key:
            key_path = Path(private_dir) / "asc-api-key.p8"
            key_path.write_text(credentials.asc_api_key)
            key_path.chmod(0o600)
            env.update(
                EXPO_ASC_API_KEY_PATH=str(key_path),
                EXPO_ASC_KEY_ID=credentials.asc_key_id,
                EXPO_ASC_ISSUER_ID=credentials.asc_issuer_id,
            )
        yield env


def run(args, credentials, cwd=None):
    """Run `eas ARGS` and return its stdout; raise EasCommandError on any failure."""
    command = [settings.EAS_CLI, *args]
    with child_environment(credentials) as env:
        try:
            completed = subprocess.run(
                command,
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=settings.EAS_COMMAND_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise EasCommandError(f"EAS CLI not found: {settings.EAS_CLI!r} (set EAS_CLI)") from None
        except subprocess.TimeoutExpired:
            raise EasCommandError(f"`eas {args[0]}` timed out after {settings.EAS_COMMAND_TIMEOUT}s") from None
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout or "").strip()[-ERROR_TAIL:]
        raise EasCommandError(f"`eas {args[0]}` exited {completed.returncode}: {scrub(output, credentials)}")
    return completed.stdout


def parse_json(stdout, what, credentials):
    try:
        return json.loads(stdout)
    except ValueError:
        raise EasCommandError(f"{what} printed no JSON: {scrub(stdout[-ERROR_TAIL:], credentials)}") from None


def start_build(*, platform, profile, credentials):
    """Start EAS builds without waiting; return the builds the CLI reports (one per platform)."""
    args = ["build", "-p", platform, "-e", profile, "--non-interactive", "--no-wait", "--json"]
    builds = parse_json(run(args, credentials), "eas build", credentials)
    if isinstance(builds, dict):
        builds = [builds]
    if not builds or not all(isinstance(build, dict) and build.get("id") for build in builds):
        raise EasCommandError("eas build printed no build ids")
    return builds


def view_build(*, build_id, credentials):
    build = parse_json(run(["build:view", build_id, "--json"], credentials), "eas build:view", credentials)
    if not isinstance(build, dict) or "status" not in build:
        raise EasCommandError("eas build:view printed no build status")
    return build


def submit(*, platform, build_id, credentials):
    """Submit a finished build to its store; return the submission id (or "" if not printed)."""
    stdout = run(["submit", "-p", platform, "--id", build_id, "--non-interactive"], credentials)
    match = SUBMISSION_URL.search(stdout)
    return match.group(1) if match else ""
