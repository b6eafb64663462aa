"""Run Conveyor: the Procfile's processes (web, worker, scheduler) and what they need.

`make run` calls this with the virtualenv's python. It needs no terminal and no stdin,
so a process supervisor can run it too (`.venv/bin/python scripts/run.py`):

1. `.env`, when present, fills in variables the environment does not set;
2. SECRET_KEY and FIELD_ENCRYPTION_KEY, when unset, come from var/ (created once, mode 0600);
3. REDIS_URL, when unset, is a private redis-server on REDIS_PORT (6380), data in var/redis,
   asking for a password created once in var/redis_password; its URL goes to var/redis_url,
   where config/settings.py finds it (as it finds the keys), so that every manage.py command
   run in this checkout uses the same Redis and keys without variables set by hand;
4. the database is migrated, static files are collected, and the admin named by
   DJANGO_SUPERUSER_USERNAME/PASSWORD is created when it does not exist;
5. honcho starts the Procfile; web listens on 127.0.0.1:PORT (8000).

SIGINT or SIGTERM stops the processes, then Redis, and exits 0. When a process exits on
its own, honcho stops the others and this exits non-zero, so a supervisor restarts it.
"""

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import honcho.manager
from cryptography.fernet import Fernet
from honcho.environ import expand_processes, parse, parse_procfile

BASE_DIR = Path(__file__).resolve().parent.parent
# Where make run keeps its state; config/settings.py reads the same variable.
VAR_DIR = Path(os.environ.get("CONVEYOR_STATE_DIR") or BASE_DIR / "var")
sys.path.insert(0, str(BASE_DIR))

from core import devredis  # noqa: E402 (needs BASE_DIR on sys.path)

log = logging.getLogger("conveyor.run")

REDIS_URL_FILE = VAR_DIR / "redis_url"
REDIS_PASSWORD_FILE = VAR_DIR / "redis_password"
DEFAULT_PORT = "8000"
DEFAULT_REDIS_PORT = "6380"
# honcho's exit codes for "stopped by SIGINT/SIGTERM": a requested stop.
STOP_CODES = {signal_info["rc"] for signal_info in honcho.manager.SIGNALS.values()}
SECRETS = {
    "SECRET_KEY": ("secret_key", lambda: secrets.token_urlsafe(50)),
    "FIELD_ENCRYPTION_KEY": ("field_encryption_key", lambda: Fernet.generate_key().decode()),
}
USER_EXISTS = (
    "import os; from django.contrib.auth import get_user_model; User = get_user_model(); "
    "print(User._default_manager.filter("
    "**{User.USERNAME_FIELD: os.environ['DJANGO_SUPERUSER_USERNAME']}).exists())"
)


def main():
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s conveyor | %(message)s", datefmt="%H:%M:%S"
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    env = prepared_environment()
    redis = None
    try:
        if env.get("REDIS_URL"):
            REDIS_URL_FILE.unlink(missing_ok=True)  # manage.py must not find a Redis we do not use
        else:
            redis, env["REDIS_URL"] = start_private_redis(env)
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        ensure_superuser(env)
        report_chromium(env)
        return run_procfile(env)
    except KeyboardInterrupt:
        log.info("stopped")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if redis:
            devredis.stop(redis)
            log.info("private Redis stopped")


def prepared_environment():
    """The environment of every child: ours, .env's gaps filled, secrets, the venv on PATH."""
    env = {**read_dotenv(), **os.environ}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    for name, (filename, generate) in SECRETS.items():
        if not env.get(name):
            env[name] = stored_secret(name, VAR_DIR / filename, generate)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PORT", DEFAULT_PORT)
    env.setdefault("PYTHONUNBUFFERED", "1")  # children's lines reach the log at once, not per 8 KB
    return env


def read_dotenv():
    path = BASE_DIR / ".env"
    if not path.exists():
        return {}
    log.info("reading .env (variables set in the environment take precedence)")
    return parse(path.read_text())


def stored_secret(name, path, generate):
    """The secret kept in `path`, created once (mode 0600) when missing."""
    if not path.exists():
        write_private(path, generate(), exclusive=True)
        log.info("%s was not set: created %s (keep it; set %s in production)", name, path, name)
    else:
        log.info("%s was not set: using %s", name, path)
    return path.read_text().strip()


def write_private(path, text, exclusive=False):
    """Write `text` to a file only its owner may read."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    with os.fdopen(os.open(path, flags, 0o600), "w") as file:
        file.write(text + "\n")


def start_private_redis(env):
    """Start redis-server on REDIS_PORT with append-only persistence; return (process, url)."""
    port = int(env.get("REDIS_PORT") or DEFAULT_REDIS_PORT)
    advice = "Set REDIS_URL to use a running Redis, or REDIS_PORT to choose another port."
    if port_in_use(port):
        raise SystemExit(
            f"conveyor: port {port} is taken (by another program, or a redis-server left from an "
            f"earlier run), so the private Redis cannot start there. {advice}"
        )
    if not REDIS_PASSWORD_FILE.exists():
        write_private(REDIS_PASSWORD_FILE, secrets.token_urlsafe(24), exclusive=True)
    password = REDIS_PASSWORD_FILE.read_text().strip()
    try:
        process, url, origin = devredis.start(VAR_DIR / "redis", port=port, persistent=True, password=password)
    except (FileNotFoundError, RuntimeError) as exc:
        raise SystemExit(f"conveyor: the private Redis did not start: {exc}. {advice}") from None
    write_private(REDIS_URL_FILE, url)
    log.info(
        "REDIS_URL was not set: started a private Redis at redis://127.0.0.1:%s/0 (%s; data in %s; "
        "password in %s; manage.py commands find it through %s)",
        port,
        origin,
        shown(VAR_DIR / "redis"),
        shown(REDIS_PASSWORD_FILE),
        shown(REDIS_URL_FILE),
    )
    return process, url


def shown(path):
    """A path as the reader knows it: relative to the checkout when it is inside it."""
    return path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path


def port_in_use(port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def manage(env, *args, capture=False):
    """Run `manage.py *args` with the prepared environment; stop everything if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"conveyor: manage.py {args[0]} failed (exit code {result.returncode})")
    return result.stdout


def ensure_superuser(env):
    username = env.get("DJANGO_SUPERUSER_USERNAME")
    if not (username and env.get("DJANGO_SUPERUSER_PASSWORD")):
        log.info("to create an admin account: .venv/bin/python manage.py createsuperuser")
        return
    if manage(env, "shell", "--no-imports", "--command", USER_EXISTS, capture=True).strip() == "True":
        log.info("admin account %r exists", username)
        return
    manage({"DJANGO_SUPERUSER_EMAIL": "", **env}, "createsuperuser", "--noinput")


def run_procfile(env):
    """Run the Procfile's processes until one stops or a signal comes; return the exit code."""
    # Let workers finish their running job (settings.WORKER_SHUTDOWN_GRACE, 30 s) before honcho's SIGKILL.
    honcho.manager.KILL_WAIT = int(env.get("WORKER_SHUTDOWN_GRACE") or 30) + 10
    manager = honcho.manager.Manager()
    procfile = parse_procfile((BASE_DIR / "Procfile").read_text())
    # Each process type gets PORT + 100 × its position: web, listed first, gets PORT itself.
    for process in expand_processes(procfile.processes, env=env):
        manager.add_process(process.name, process.cmd, env=process.env, cwd=str(BASE_DIR))
    print_addresses(env["PORT"])
    manager.loop()
    if manager.returncode in STOP_CODES:
        log.info("stopped")
        return 0
    log.error("a process exited (code %s), so everything was stopped", manager.returncode)
    return manager.returncode if manager.returncode and manager.returncode > 0 else 1


def report_chromium(env):
    """Headless alert rules need a Chromium; say which, or that there is none."""
    from alerts.fetchers import find_chromium

    found = find_chromium(env.get("CHROMIUM_PATH"))
    if found:
        log.info("headless rules use %s", found)
    else:
        log.info(
            "no Chromium found: headless alert rules will fail until it is installed "
            "(Debian: apt install chromium) or CHROMIUM_PATH is set"
        )


def print_addresses(port):
    base = f"http://127.0.0.1:{port}"
    for what, path in [
        ("admin", "/admin/"),
        ("queue dashboard", "/django-rq/"),
        ("API", "/api/v1/"),
        ("API docs", "/api/docs/ (ReDoc: /api/redoc/)"),
        ("health", "/health"),
    ]:
        log.info("%-16s %s%s", what, base, path)


if __name__ == "__main__":
    sys.exit(main())
