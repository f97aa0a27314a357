"""Fixtures for the Benchmarks plugin: a private Airflow home, real users and tokens, real history databases.

Airflow reads its configuration from the environment; the session fixture `airflow_home` points it at a temporary
home (SQLite metadata database, migrated with `airflow db migrate`, SimpleAuthManager users with known passwords)
before anything of Airflow is imported by these tests, and restores the environment afterwards.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import secrets
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

USERS = {"admin": "admin", "viewer": "viewer"}           # username -> SimpleAuthManager role
PASSWORDS = {"admin": "admin-pass-4711", "viewer": "viewer-pass-4711"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_api_server(env: dict[str, str], log_path: Path, timeout_s: float = 180):
    """A real `airflow api-server` on a free loopback port, in its own process group; yields its base URL once it
    answers /api/v2/monitor/health, and stops it (and its workers) whatever the test did."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api-server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api-server did not answer in {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield base
    finally:
        stop_process_group(proc)


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int                  # body bytes the client had sent when the answer came
    seconds: float

    def json(self):
        return json.loads(self.body)


def raw_post(base: str, path: str, headers: dict[str, str], body: bytes, *, chunked: bool = False,
             chunk_size: int = 1 << 16, timeout_s: float = 120) -> RawResponse:
    """POST over a plain socket that stops sending its body as soon as the server answers (as curl does), so that a
    test sees whether the server answered before reading the body and how much of it it had been sent. Keep-alive:
    the server may drain the rest; the answer is read by its Content-Length."""
    host, port = base.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            *(f"{k}: {v}" for k, v in headers.items()),
            "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"]
    started = time.monotonic()
    sent = 0
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        pieces = [body[i:i + chunk_size] for i in range(0, len(body), chunk_size)]
        frames = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"] if chunked else pieces
        answered = False
        for frame in frames:
            view = memoryview(frame)
            while view and not answered:
                readable, writable, _ = select.select([sock], [sock], [], timeout_s)
                if readable:
                    answered = True
                elif writable:
                    try:
                        n = sock.send(view)
                    except (BrokenPipeError, ConnectionResetError):
                        answered = True
                        break
                    view = view[n:]
                    sent += n
            if answered:
                break
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before an answer: {data[:200]!r}"
            data += chunk
        head_bytes, rest = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        answer_headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        length = int(answer_headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return RawResponse(int(status_line.split()[1]), answer_headers, rest[:length], sent, time.monotonic() - started)


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM a process started with start_new_session=True and its children; SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    """Environment of a private Airflow installation; the metadata database is migrated once per session."""
    home = tmp_path_factory.mktemp("airflow-home")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": "",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    (home / "dags").mkdir()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    subprocess.run([airflow_bin(), "db", "migrate"], check=True, env={**os.environ, "PYTHONPATH": pythonpath},
                   stdout=subprocess.DEVNULL, timeout=300)
    if str(PLUGINS) not in sys.path:
        sys.path.append(str(PLUGINS))        # what Airflow does with its plugins folder
    if "airflow.settings" in sys.modules:     # imported earlier by other tests: point the ORM at this home
        from airflow import settings
        settings.configure_vars()
        settings.configure_orm()
    yield {"home": home, "env": dict(env), "pythonpath": pythonpath}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def auth_manager(airflow_home):
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


@pytest.fixture(scope="session")
def viewer_token(auth_manager) -> str:
    """A real JWT, signed by Airflow's auth manager for the SimpleAuthManager user 'viewer'."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))


@pytest.fixture()
def artifacts(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    monkeypatch.setenv("MLPERF_ARTIFACTS_DIR", str(root))
    return root


def _pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture()
def pg_url():
    """A fresh PostgreSQL database on 127.0.0.1:5432 (trust auth), dropped afterwards."""
    if not _pg_available():
        pytest.fail("no PostgreSQL server on 127.0.0.1:5432 (this project's machines and CI start one)")
    import psycopg2

    name = f"mlperf_ui_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        from mlperf_benchmarks import app as plugin_app

        plugin_app.reset_stores()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def history_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.sqlite'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture()
def seeded(history_url, artifacts, monkeypatch, airflow_home):
    from tests.ui.seed import seed_history

    data = seed_history(history_url, artifacts)
    monkeypatch.setenv("MLPERF_HISTORY_URL", history_url)
    return data


@pytest.fixture()
def client(auth_manager):
    """TestClient of the plugin's own app (as Airflow mounts it), with the auth manager initialised."""
    from fastapi.testclient import TestClient
    from mlperf_benchmarks import app as plugin_app

    plugin_app.reset_stores()
    with TestClient(plugin_app.create_app()) as test_client:
        yield test_client
    plugin_app.reset_stores()


@pytest.fixture()
def authed(client, viewer_token):
    client.headers["Authorization"] = f"Bearer {viewer_token}"
    return client
