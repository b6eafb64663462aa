"""A client for the Expo EAS CLI (`EAS_CLI`, default `eas`).

The CLI is someone else's code running on a user's project: it gets an allow-listed
environment (PATH, locale, a private HOME, EXPO_TOKEN and the App Store Connect values),
nothing of Conveyor's own (SECRET_KEY, FIELD_ENCRYPTION_KEY, DATABASE_URL, REDIS_URL…),
and runs in the project's own source tree (`project_checkout`), never in Conveyor's.

Secrets reach the CLI only through that environment or files in a private temporary
directory, never its arguments, and are scrubbed from any error text that is stored or
logged.
"""

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core import confined
from core.failures import ExplainedError

from . import checkout

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


# `eas` runs in the project's source tree: a fresh checkout of its repository (removed on
# exit) or its directory under EAS_PROJECTS_ROOT. The publishing services call this.
project_checkout = checkout.project_checkout
SourceRefused = checkout.SourceRefused
CheckoutFailed = checkout.CheckoutFailed


def inherited_environment():
    """What the CLI may take from ours: the PATH to find node, and the locale."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "LANG", "LANGUAGE") or name.startswith("LC_")
    }


@contextmanager
def child_environment(credentials):
    """(environment, private directory) of one CLI call: the allow-listed variables, a
    private HOME, the token and the key file it needs; the directory is removed after."""
    with tempfile.TemporaryDirectory(prefix="conveyor-eas-") as private_dir:
        home = Path(private_dir) / "home"
        home.mkdir()
        env = {**inherited_environment(), "HOME": str(home), "EXPO_TOKEN": credentials.expo_token}
        env.update(EAS_NO_VCS="1", CI="1")  # no git needed in the project; never prompt
        if credentials.asc_api_key:
            key_path = Path(private_dir) / "asc-api-key.p8"
            key_path.write_text(credentials.asc_api_key)
            key_path.chmod(0o600)
            env.update(
                EXPO_ASC_API_KEY_PATH=str(key_path),
                EXPO_ASC_KEY_ID=credentials.asc_key_id,
                EXPO_ASC_ISSUER_ID=credentials.asc_issuer_id,
            )
        yield env, Path(private_dir)


def run(args, credentials, cwd=None):
    """Run `eas ARGS` in `cwd` (the project's checkout) and return its stdout; raise
    EasCommandError on any failure. Without a `cwd`, it runs in an empty private
    directory: never in the worker's own (Conveyor's checkout, with var/ and its keys)."""
    with child_environment(credentials) as (env, private_dir):
        executable = shutil.which(settings.EAS_CLI, path=env.get("PATH"))
        if executable is None:
            raise EasCommandError(f"EAS CLI not found: {settings.EAS_CLI!r} (set EAS_CLI)")
        workdir = private_dir / "empty"
        workdir.mkdir()
        try:
            completed = subprocess.run(
                # Killed with its worker: a killed worker's `eas` must not run on beside the
                # next try's, past the queue's one-at-a-time cap.
                confined.confined_command([executable, *args]),
                env=env,
                cwd=cwd or workdir,
                capture_output=True,
                text=True,
                timeout=settings.EAS_COMMAND_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
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


def start_build(*, platform, profile, credentials, cwd=None):
    """Start EAS builds in `cwd` without waiting; return the builds the CLI reports (one per platform)."""
    args = ["build", "-p", platform, "-e", profile, "--non-interactive", "--no-wait", "--json"]
    builds = parse_json(run(args, credentials, cwd), "eas build", credentials)
    if isinstance(builds, dict):
        builds = [builds]
    if not builds or not all(isinstance(build, dict) and build.get("id") for build in builds):
        raise EasCommandError("eas build printed no build ids")
    return builds


def view_build(*, build_id, credentials, cwd=None):
    build = parse_json(run(["build:view", build_id, "--json"], credentials, cwd), "eas build:view", credentials)
    if not isinstance(build, dict) or "status" not in build:
        raise EasCommandError("eas build:view printed no build status")
    return build


def submit(*, platform, build_id, credentials, cwd=None):
    """Submit a finished build to its store; return the submission id (or "" if not printed)."""
    stdout = run(["submit", "-p", platform, "--id", build_id, "--non-interactive"], credentials, cwd)
    match = SUBMISSION_URL.search(stdout)
    return match.group(1) if match else ""


def find_submission(*, platform, build_id, credentials, cwd=None, limit=50):
    """The id of a submission EAS already has for `build_id` (`eas submit:list`), or "".
    Asked before submitting again a build whose earlier `eas submit` was cut short."""
    args = ["submit:list", "-p", platform, "--limit", str(limit), "--json", "--non-interactive"]
    submissions = parse_json(run(args, credentials, cwd), "eas submit:list", credentials)
    for submission in submissions if isinstance(submissions, list) else []:
        if isinstance(submission, dict) and build_id in json.dumps(submission.get("submittedBuild") or {}):
            return str(submission.get("id", ""))
    return ""
