"""A throwaway database for the benchmarks and the chaos drill: never the user's own data.

SQLite in the caller's work directory, unless DATABASE_URL names a PostgreSQL server: then
a new database there, created now and dropped (with its connections) afterwards.
"""

import os
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


def is_postgres(url):
    return (url or "").startswith(("postgres://", "postgresql://"))


@contextmanager
def throwaway_database(workdir, prefix):
    """Yield the DATABASE_URL of an empty database named after `prefix`."""
    server_url = os.environ.get("DATABASE_URL")
    if not is_postgres(server_url):
        yield f"sqlite:///{workdir / f'{prefix}.sqlite3'}"
        return
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}", query="", fragment=""))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
