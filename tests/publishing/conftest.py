"""Fixtures of the publishing tests: publishings asked for through the real API, and a
git server on loopback with repositories on it."""

import subprocess
from pathlib import Path

import pytest

from core.devredis import free_port
from publishing.models import Publishing
from tests.conftest import wait_for
from tests.fakes.outside_fake import OUTSIDE_HOST, start_process, stop_process

SECRET = "expo-secret-token-0123456789"


@pytest.fixture
def publish(api):
    project = api.create_project()

    def publish(platform="ios"):
        response = api.initiate(project, platform=platform, token=SECRET)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    return publish


def status_of(publishing_id):
    return Publishing.objects.get(pk=publishing_id).status


def wait_until_finished(publishing_id, timeout=30):
    wait_for(
        lambda: status_of(publishing_id) in ("succeeded", "failed"),
        timeout=timeout,
        message=f"publishing {publishing_id} to finish",
    )
    return Publishing.objects.get(pk=publishing_id)


def start_times(fake_eas, command):
    return [call["time"] for call in fake_eas.calls_of(command)]


GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


class GitServer:
    """tests/fakes/git_http.py: git's smart HTTP for the repositories under `root`."""

    def __init__(self, root):
        self.root = Path(root)
        self.port = free_port()
        self.url = f"http://{OUTSIDE_HOST}:{self.port}"
        self.process = start_process(
            "tests.fakes.git_http", "--root", str(self.root), "--host", OUTSIDE_HOST, "--port", str(self.port)
        )

    def repository(self, name, files, *, tag=None, branch=None):
        """A repository NAME.git holding `files` ({path: text or bytes}, or a callable
        that writes into the work tree); returns its URL."""
        work = self.root / f"{name}-work"
        work.mkdir()
        git(work, "init", "-q")
        write_files(work, files)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "first")
        if tag:
            git(work, "tag", tag)
        if branch:
            git(work, "checkout", "-q", "-b", branch)
            (work / "BRANCH").write_text(branch)
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", "on the branch")
            git(work, "checkout", "-q", "main")
        git(self.root, "clone", "-q", "--bare", str(work), f"{name}.git")
        # As GitHub and GitLab do: a commit can be fetched by its id.
        git(self.root / f"{name}.git", "config", "uploadpack.allowAnySHA1InWant", "true")
        return f"{self.url}/{name}.git"

    def commit_of(self, name, ref="HEAD"):
        return subprocess.run(
            ["git", "rev-parse", ref], cwd=self.root / f"{name}.git", check=True, capture_output=True, text=True
        ).stdout.strip()

    def stop(self):
        stop_process(self.process)


def git(cwd, *args):
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True)


def write_files(work, files):
    if callable(files):
        return files(work)
    for path, content in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("git-server"))
    yield server
    server.stop()


@pytest.fixture
def git_http_allowed(settings):
    """The tests' git server speaks plain http on loopback (production: https only)."""
    settings.EAS_GIT_ALLOW_HTTP = True
