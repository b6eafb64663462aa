"""`manage.py check --deploy` is clean with the production block of README.md."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def readme_production_environment():
    """NAME=value lines of the first sh block under README's "## Production"."""
    section = (BASE_DIR / "README.md").read_text().split("## Production", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line and not line.startswith("#"))


def check_deploy(environment):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def base_environment(tmp_path):
    # Not the developer's environment: only what the check needs, on a throwaway SQLite file.
    return {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}"}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    documented = readme_production_environment()
    assert documented["SECRET_KEY"].startswith("<"), "the README must not hold a real key"
    documented["SECRET_KEY"] = secrets.token_urlsafe(50)

    checked = check_deploy({**base_environment(tmp_path), **documented})

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout, checked.stdout + checked.stderr


def test_check_deploy_warns_without_them(tmp_path):
    plain = {**base_environment(tmp_path), "SECRET_KEY": secrets.token_urlsafe(50)}
    checked = check_deploy(plain)
    assert checked.returncode != 0
    assert "security.W004" in checked.stderr + checked.stdout
