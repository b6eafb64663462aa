"""Where `eas` runs: the project's own source tree, never Conveyor's checkout.

A project names its source, one of:

- a git repository (https URL) and a ref: fetched for each use, shallow, into a private
  temporary directory that is removed afterwards. git goes through the same guard as every
  outbound call: the host is resolved once and checked by core.outbound (no private
  address), and git's connection is pinned to that address (http.curloptResolve), so a
  second DNS answer cannot lead it inside; redirects are refused; only https may be used
  (no file://, ssh:// or ext::); the whole fetch has a time limit, its files a size limit
  (RLIMIT_FSIZE, and the checkout's total is watched) and their number a limit; symlinks
  are checked out as plain files, so a repository cannot make `eas` read (and upload) a
  file of ours.
- a directory under EAS_PROJECTS_ROOT: its real path (symlinks resolved) must lie inside
  the root, and so must every symlink inside it.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from core import confined, outbound
from core.failures import ExplainedError

# A branch, a tag or a commit: no leading "-" (an option to git), no ":" (a refspec that
# writes a local ref), no "..".
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
WATCH_INTERVAL = 0.25
ERROR_TAIL = 500


class SourceRefused(ExplainedError):
    """The project's source may not be used (scheme, address, path): the user must change it."""


class CheckoutFailed(ExplainedError):
    """git failed, took too long or fetched too much."""


# --- checks on save and on use ----------------------------------------------------------------


def check_repository_url(url):
    """Raise SourceRefused unless `url` is a git URL we may fetch: https (http only where
    EAS_GIT_ALLOW_HTTP says so: the tests' loopback server), a host, no credentials."""
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.EAS_GIT_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise SourceRefused(f"only {' or '.join(schemes)} repository URLs with a host can be used")
    if parts.username or parts.password:
        raise SourceRefused("a repository URL may not carry credentials")
    if parts.query or parts.fragment:
        raise SourceRefused("a repository URL has no query or fragment")


def check_repository_address(url):
    """check_repository_url, and its host must not resolve to a refused address (checked
    again at each fetch: a name that does not resolve today may tomorrow)."""
    check_repository_url(url)
    try:
        outbound.refuse_private(url)
    except outbound.FetchRefused as exc:
        raise SourceRefused(f"refused: {exc}") from None
    except httpx.HTTPError:
        pass


def check_ref(ref):
    if ref and (not REF.match(ref) or ".." in ref or ref.endswith((".lock", "/"))):
        raise SourceRefused(f"{ref!r} is not a branch, tag or commit name")


def projects_root():
    if not settings.EAS_PROJECTS_ROOT:
        raise SourceRefused("directory sources are off: EAS_PROJECTS_ROOT is not set")
    return Path(settings.EAS_PROJECTS_ROOT).resolve()


def directory_under_root(relative):
    """The real path of `relative` under EAS_PROJECTS_ROOT; SourceRefused if it escapes the
    root (by "..", an absolute path or a symlink), is not a directory, or holds a symlink
    that points outside it."""
    root = projects_root()
    if not relative or Path(relative).is_absolute() or "\0" in relative:
        raise SourceRefused("the directory must be a relative path under EAS_PROJECTS_ROOT")
    real = resolved(root / relative)
    if real is None or root not in real.parents:
        raise SourceRefused(f"{relative!r} is not inside EAS_PROJECTS_ROOT")
    if not real.is_dir():
        raise SourceRefused(f"{relative!r} is not a directory under EAS_PROJECTS_ROOT")
    check_symlinks_inside(real, relative)
    return real


def check_symlinks_inside(directory, shown_as):
    for parent, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            path = Path(parent, name)
            if path.is_symlink() and not is_within(resolved(path), directory):
                raise SourceRefused(f"{shown_as!r} holds a symlink to outside itself: {path.relative_to(directory)}")


def resolved(path):
    """The real path, or None for a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def is_within(path, directory):
    return path is not None and (path == directory or directory in path.parents)


# --- the checkout ---------------------------------------------------------------------------


@contextmanager
def project_checkout(project):
    """The directory `eas` runs in for `project`; a fetched checkout is removed on exit."""
    if project.repository_url:
        with tempfile.TemporaryDirectory(prefix="conveyor-checkout-") as private:
            yield fetch(project.repository_url, project.repository_ref, Path(private))
    elif project.directory:
        yield directory_under_root(project.directory)
    else:
        raise SourceRefused(f"project {project.pk} names no source: set its repository_url or directory")


def fetch(url, ref, private):
    """A shallow checkout of `url` at `ref` (the remote's HEAD when empty) in `private`/src."""
    check_repository_url(url)
    check_ref(ref)
    try:
        pin = curl_resolve_entry(url)
    except outbound.FetchRefused as exc:
        raise SourceRefused(str(exc)) from None
    except (httpx.HTTPError, UnicodeError, ValueError) as exc:
        raise CheckoutFailed(f"cannot resolve the repository's host: {exc}") from None
    home, source = private / "home", private / "src"
    home.mkdir()
    git = Git(home, source, deadline=time.monotonic() + settings.EAS_CHECKOUT_TIMEOUT)
    git.run("init", "--quiet", "--template=", str(source), cwd=private)
    git.run("config", "core.symlinks", "false")
    git.run(*network_options(pin), "fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, ref or "HEAD")
    git.run("checkout", "--quiet", "FETCH_HEAD")
    return source


def curl_resolve_entry(url):
    """HOST:PORT:ADDRESS for http.curloptResolve, the address checked by core.outbound."""
    parts = urlsplit(url)
    address = urlsplit(outbound.resolve(url).pinned_url).hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}:{f'[{address}]' if ':' in address else address}"


def network_options(pin):
    allowed = ["-c", "protocol.https.allow=always"]
    if settings.EAS_GIT_ALLOW_HTTP:
        allowed += ["-c", "protocol.http.allow=always"]
    return [
        *("-c", "protocol.allow=never", *allowed),
        *("-c", f"http.curloptResolve={pin}", "-c", "http.followRedirects=false", "-c", "http.proxy="),
        # A server that stalls is dropped: less than 1 KB/s for 30 s.
        *("-c", "http.lowSpeedLimit=1024", "-c", "http.lowSpeedTime=30"),
        *("-c", "credential.helper=", "-c", "core.askPass=", "-c", "fetch.recurseSubmodules=false"),
    ]


class Git:
    """git commands on one checkout, under one deadline and one size budget."""

    def __init__(self, home, source, *, deadline):
        self.source, self.deadline = source, deadline
        self.max_bytes = settings.EAS_CHECKOUT_MAX_BYTES
        self.max_files = settings.EAS_CHECKOUT_MAX_FILES
        self.env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "LC_ALL": "C",
            # No system or user configuration, no prompt for a password.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
        }

    def run(self, *args, cwd=None):
        argv = confined.confined_command(["git", *args], file_bytes=self.max_bytes)
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                argv,
                cwd=cwd or self.source,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
            over = self.watch(process)
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-ERROR_TAIL:]
        if over:
            raise CheckoutFailed(over)
        # Python ignores SIGXFSZ, and so does git after the shim's exec: a write past
        # RLIMIT_FSIZE fails with EFBIG instead of killing it.
        if process.returncode == -signal.SIGXFSZ or "File too large" in message:
            raise CheckoutFailed(self.too_large())
        if process.returncode != 0:
            raise CheckoutFailed(f"git {subcommand(args)} failed: {message}")

    def watch(self, process):
        """Wait for `process`; kill its group and say why when it goes over a limit, while it
        runs or with what it wrote after the last look."""
        while process.poll() is None:
            over = self.too_slow() or self.too_much()
            if over:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return over
            time.sleep(WATCH_INTERVAL)
        return self.too_much()

    def too_slow(self):
        if time.monotonic() > self.deadline:
            return f"the checkout took longer than {settings.EAS_CHECKOUT_TIMEOUT:g} s (limit: EAS_CHECKOUT_TIMEOUT)"
        return None

    def too_much(self):
        """Bytes, and files: a repository of a million empty files exhausts a disk's inodes."""
        files, size = usage(self.source)
        if size > self.max_bytes:
            return self.too_large()
        if files > self.max_files:
            return f"the checkout holds more than {self.max_files} files (limit: EAS_CHECKOUT_MAX_FILES)"
        return None

    def too_large(self):
        return f"the checkout is larger than {self.max_bytes} bytes (limit: EAS_CHECKOUT_MAX_BYTES)"


def subcommand(args):
    """ "fetch" of ("-c", "a=b", "fetch", "--depth", …)."""
    options = iter(args)
    for arg in options:
        if arg == "-c":
            next(options, None)
        elif not arg.startswith("-"):
            return arg
    return "?"


def usage(directory):
    """(files, bytes) under `directory`."""
    files = size = 0
    for parent, _, filenames in os.walk(directory):
        files += len(filenames)
        for name in filenames:
            try:
                size += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:
                pass  # a temporary file git just renamed
    return files, size
