"""The Procfile's commands, for the tools that start the stack as `make run` does (the
benchmarks, the chaos drill): whatever the Procfile says is what they measure."""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def commands():
    """{process type: argv}, each run by a shell, as honcho runs it."""
    from honcho.environ import parse_procfile

    procfile = parse_procfile((BASE_DIR / "Procfile").read_text())
    return {name: ["/bin/sh", "-c", command] for name, command in procfile.processes.items()}


def environment(env, port):
    """`env` for those commands: the web's PORT, and this Python's executables (python,
    gunicorn) found first."""
    return {**env, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
