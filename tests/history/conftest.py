"""Fixtures of the history store tests: a migrated store on SQLite and on a real PostgreSQL.

PostgreSQL: the server on 127.0.0.1:5432 (trust auth, user postgres) when it answers, else a private one started
here with initdb + pg_ctl on a free port (MLPERF_TEST_PRIVATE_PG=1 forces that). Each test gets its own database
with a unique name, dropped afterwards.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from include.history import HistoryStore

PG_HOST, PG_PORT = "127.0.0.1", 5432


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_private_server() -> tuple[str, int, Callable[[], None]]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
            initdb, pg_ctl = str(candidate / "initdb"), str(candidate / "pg_ctl")
            break
    if not initdb or not Path(initdb).exists():
        message = "no PostgreSQL answers on 127.0.0.1:5432 and initdb is not installed"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)   # never skipped in CI
    data_dir = Path(tempfile.mkdtemp(prefix="history-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:   # PostgreSQL refuses to run as root: run it as the postgres system user
        shutil.chown(data_dir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(prefix + [initdb, "-D", str(data_dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [pg_ctl, "-D", str(data_dir / "data"), "-l", str(data_dir / "log"), "-w", "-o",
                             f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(prefix + [pg_ctl, "-D", str(data_dir / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)

    return PG_HOST, port, stop


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str, int]]:
    if not os.environ.get("MLPERF_TEST_PRIVATE_PG") and _answers(PG_HOST, PG_PORT):
        yield PG_HOST, PG_PORT
        return
    host, port, stop = _start_private_server()
    try:
        yield host, port
    finally:
        stop()


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    import psycopg2

    host, port = pg_server
    name = f"history_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://postgres@{host}:{port}/{name}"
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'history.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """An empty database on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url) -> Iterator[HistoryStore]:
    """A migrated, empty store on each backend."""
    history = HistoryStore(db_url)
    history.upgrade()
    yield history
    history.dispose()
