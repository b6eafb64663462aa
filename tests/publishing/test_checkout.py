"""Where `eas` runs: the project's own source, fetched through the guard or found under
EAS_PROJECTS_ROOT; and what it gets: an allow-listed environment, no secret of ours."""

import os
import socket
from pathlib import Path

import httpx
import pytest

from publishing import eas
from publishing.checkout import CheckoutFailed, SourceRefused
from publishing.models import Project
from tests.conftest import BASE_DIR

APP_JSON = '{"expo": {"name": "demo", "slug": "demo-app"}}'


def project(**source):
    return Project(pk=1, name="demo", **source)


def requests_to(server, prefix):
    return [
        request for request in httpx.get(f"{server.url}/_fake/requests").json() if request["path"].startswith(prefix)
    ]


# --- a repository, fetched per use ------------------------------------------------------------


def test_a_repository_is_checked_out_at_its_ref_and_removed_afterwards(git_server, git_http_allowed):
    url = git_server.repository("app", {"app.json": APP_JSON}, branch="release")

    with eas.project_checkout(project(repository_url=url, repository_ref="release")) as path:
        assert (path / "app.json").read_text() == APP_JSON
        assert (path / "BRANCH").read_text() == "release"
        checkout_root = path.parent
    assert not checkout_root.exists()

    with eas.project_checkout(project(repository_url=url)) as path:
        assert not (path / "BRANCH").exists(), "no ref: the repository's default branch"


def test_a_tag_or_a_commit_can_be_the_ref(git_server, git_http_allowed):
    url = git_server.repository("tagged", {"app.json": APP_JSON}, tag="v1.0", branch="next")
    with eas.project_checkout(project(repository_url=url, repository_ref="v1.0")) as path:
        assert (path / "app.json").exists() and not (path / "BRANCH").exists()
    commit = git_server.commit_of("tagged", "next")
    with eas.project_checkout(project(repository_url=url, repository_ref=commit)) as path:
        assert (path / "BRANCH").read_text() == "next"


def test_a_symlink_in_the_repository_is_checked_out_as_a_plain_file(git_server, git_http_allowed):
    def files(work):
        (work / "app.json").write_text(APP_JSON)
        (work / "keys").symlink_to(BASE_DIR / "var")
        (work / "settings.py").symlink_to(BASE_DIR / "config" / "settings.py")

    url = git_server.repository("links", files)
    with eas.project_checkout(project(repository_url=url)) as path:
        assert not (path / "keys").is_symlink() and not (path / "settings.py").is_symlink()
        assert (path / "settings.py").read_text() == str(BASE_DIR / "config" / "settings.py")


def test_git_connects_to_the_address_that_was_checked(git_server, git_http_allowed, monkeypatch):
    """The name resolves (for our check) to the server; git itself could not resolve it
    (.test is never in DNS): the fetch works only because git is pinned to our answer."""
    url = git_server.repository("pinned", {"app.json": APP_JSON})
    real_getaddrinfo = socket.getaddrinfo

    def fake_dns(host, *args, **kwargs):
        return real_getaddrinfo("127.0.0.2" if host == "git.conveyor.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    named = url.replace("127.0.0.2", "git.conveyor.test")
    with eas.project_checkout(project(repository_url=named)) as path:
        assert (path / "app.json").exists()
    assert requests_to(git_server, "/pinned.git")[0]["host"] == f"git.conveyor.test:{git_server.port}"


@pytest.mark.parametrize(
    "url, message",
    [
        ("file:///etc", "only https"),
        ("ssh://git@example.com/app.git", "only https"),
        ("ext::sh -c touch% /tmp/pwned", "only https"),
        ("https://user:token@example.com/app.git", "credentials"),
    ],
)
def test_other_schemes_and_credentials_are_refused(url, message):
    with pytest.raises(SourceRefused, match=message):
        with eas.project_checkout(project(repository_url=url)):
            pass


def test_plain_http_is_refused_in_production(git_server):
    url = git_server.repository("plain", {"app.json": APP_JSON})
    with pytest.raises(SourceRefused, match="only https"):
        with eas.project_checkout(project(repository_url=url)):
            pass
    assert requests_to(git_server, "/plain.git") == []


def test_a_private_address_is_refused_before_git_runs(git_server, git_http_allowed, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    url = git_server.repository("private", {"app.json": APP_JSON})
    with pytest.raises(SourceRefused, match="non-public address"):
        with eas.project_checkout(project(repository_url=url)):
            pass
    assert requests_to(git_server, "/private.git") == []


def test_a_redirect_is_not_followed(git_server, git_http_allowed, settings):
    settings.ALLOW_PRIVATE_FETCH = False
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    git_server.repository("target", {"app.json": APP_JSON})
    with pytest.raises(CheckoutFailed, match="git fetch failed"):
        with eas.project_checkout(project(repository_url=f"{git_server.url}/moved/target.git")):
            pass
    assert requests_to(git_server, "/moved/") and not requests_to(git_server, "/target.git")


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/x", "main:refs/heads/x", "a..b", "-", "x" * 201])
def test_a_ref_that_is_not_a_name_is_refused(git_server, git_http_allowed, ref):
    url = git_server.repository(f"refs-{abs(hash(ref))}", {"app.json": APP_JSON})
    with pytest.raises(SourceRefused, match="not a branch, tag or commit"):
        with eas.project_checkout(project(repository_url=url, repository_ref=ref)):
            pass


def test_a_repository_larger_than_the_limit_is_refused(git_server, git_http_allowed, settings):
    settings.EAS_CHECKOUT_MAX_BYTES = 200_000
    url = git_server.repository("huge", {"app.json": APP_JSON, "blob.bin": os.urandom(2_000_000)})
    with pytest.raises(CheckoutFailed, match="EAS_CHECKOUT_MAX_BYTES"):
        with eas.project_checkout(project(repository_url=url)):
            pass


def test_a_repository_of_more_files_than_the_limit_is_refused(git_server, git_http_allowed, settings):
    settings.EAS_CHECKOUT_MAX_FILES = 200
    files = {"app.json": APP_JSON, **{f"empty/{n}": "" for n in range(300)}}
    url = git_server.repository("inodes", files)
    with pytest.raises(CheckoutFailed, match=r"more than 200 files \(limit: EAS_CHECKOUT_MAX_FILES\)"):
        with eas.project_checkout(project(repository_url=url)):
            pass


def test_a_checkout_slower_than_the_limit_is_stopped(git_server, git_http_allowed, settings):
    settings.EAS_CHECKOUT_TIMEOUT = 1
    git_server.repository("slow", {"app.json": APP_JSON})
    with pytest.raises(CheckoutFailed, match=r"longer than 1 s \(limit: EAS_CHECKOUT_TIMEOUT\)"):
        with eas.project_checkout(project(repository_url=f"{git_server.url}/slow/slow.git")):
            pass


# --- a directory under EAS_PROJECTS_ROOT ---------------------------------------------------------


@pytest.fixture
def projects_root(tmp_path, settings):
    root = tmp_path / "projects"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "app.json").write_text(APP_JSON)
    (tmp_path / "outside").mkdir()
    settings.EAS_PROJECTS_ROOT = str(root)
    return root


def test_a_directory_under_the_root_is_used_in_place(projects_root):
    with eas.project_checkout(project(directory="demo")) as path:
        assert path == (projects_root / "demo").resolve()
    assert (projects_root / "demo" / "app.json").exists()


@pytest.mark.parametrize(
    "directory", ["../outside", "/etc", "demo/../../outside", "escape", "missing", "demo/app.json"]
)
def test_a_directory_escaping_the_root_is_refused(projects_root, directory):
    (projects_root / "escape").symlink_to(projects_root.parent / "outside")
    with pytest.raises(SourceRefused):
        with eas.project_checkout(project(directory=directory)):
            pass


@pytest.mark.parametrize("target", [BASE_DIR / "var", Path("loop")])
def test_a_directory_holding_a_symlink_to_outside_is_refused(projects_root, target):
    (projects_root / "demo" / "link").symlink_to(target if target.is_absolute() else projects_root / "demo" / "loop")
    (projects_root / "demo" / "loop").symlink_to(projects_root / "demo" / "link")
    with pytest.raises(SourceRefused, match="symlink to outside"):
        with eas.project_checkout(project(directory="demo")):
            pass


def test_symlinks_within_the_directory_are_fine(projects_root):
    (projects_root / "demo" / "node_modules" / "pkg").mkdir(parents=True)
    (projects_root / "demo" / "node_modules" / ".bin").mkdir()
    (projects_root / "demo" / "node_modules" / ".bin" / "tool").symlink_to("../pkg")
    with eas.project_checkout(project(directory="demo")) as path:
        assert path.name == "demo"


def test_directory_sources_are_off_without_a_root(settings):
    settings.EAS_PROJECTS_ROOT = ""
    with pytest.raises(SourceRefused, match="EAS_PROJECTS_ROOT is not set"):
        with eas.project_checkout(project(directory="demo")):
            pass


def test_a_project_without_a_source_cannot_be_checked_out():
    with pytest.raises(SourceRefused, match="names no source"):
        with eas.project_checkout(project()):
            pass


# --- what the CLI gets ---------------------------------------------------------------------------

ALLOWED = {"PATH", "HOME", "LANG", "LANGUAGE", "EAS_NO_VCS", "CI", "EXPO_ASC_API_KEY_PATH", "EXPO_ASC_KEY_ID"}
ALLOWED |= {"EXPO_ASC_ISSUER_ID"}
OURS = {
    "SECRET_KEY": "conveyor-secret-key-do-not-leak",
    "FIELD_ENCRYPTION_KEY": "field-key-do-not-leak",
    "DATABASE_URL": "postgres://conveyor:db-password-do-not-leak@db/conveyor",
    "REDIS_URL": "redis://:redis-password-do-not-leak@127.0.0.1:6379/0",
}


def test_the_cli_runs_in_the_checkout_with_an_allow_listed_environment(
    git_server, git_http_allowed, fake_eas, monkeypatch
):
    for name, value in OURS.items():
        monkeypatch.setenv(name, value)
    url = git_server.repository("built", {"app.json": APP_JSON})
    credentials = eas.Credentials(
        expo_token="expo-token-0123456789", asc_api_key="-----KEY-----", asc_key_id="K1", asc_issuer_id="I1"
    )

    with eas.project_checkout(project(repository_url=url)) as path:
        builds = eas.start_build(platform="ios", profile="production", credentials=credentials, cwd=path)
        eas.view_build(build_id=builds[0]["id"], credentials=credentials, cwd=path)

    for call in fake_eas.calls():
        assert Path(call["cwd"]) == path
        environment = call["environment"]
        assert set(environment) - {name for name in environment if name.startswith("LC_")} <= ALLOWED
        assert not [value for value in environment.values() if "do-not-leak" in value]
        home = Path(environment["HOME"])
        assert home.name == "home" and home != Path.home() and not home.exists()


def test_without_a_checkout_the_cli_never_runs_in_our_tree(fake_eas):
    credentials = eas.Credentials(expo_token="expo-token-0123456789")
    eas.start_build(platform="android", profile="production", credentials=credentials)
    (call,) = fake_eas.calls()
    assert BASE_DIR not in Path(call["cwd"]).parents and Path(call["cwd"]) != BASE_DIR
    assert Path(call["cwd"]).name == "empty"


def test_a_worker_gives_the_cli_none_of_its_own_secrets(api, fake_eas, processes, fast_publishing_policy):
    from publishing.models import Publishing
    from tests.conftest import wait_for

    fake_eas.configure(polls_until_done=1)
    response = api.initiate(api.create_project(), token="expo-secret-token-0123456789")
    processes.worker("publishing-builds")
    wait_for(lambda: Publishing.objects.get(pk=response.json()["id"]).is_finished, message="the publishing")

    worker_environment = processes.environment({})
    secrets = {
        name: worker_environment[name] for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL")
    }
    assert len(fake_eas.calls()) >= 3
    for call in fake_eas.calls():
        assert not set(secrets) & set(call["environment"])
        assert not [value for value in call["environment"].values() if value in secrets.values()]
        assert BASE_DIR != Path(call["cwd"]) and BASE_DIR not in Path(call["cwd"]).parents
