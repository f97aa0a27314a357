"""`make ui` (`python -m include.apps.ui`) as a user runs it: its checks before Airflow starts (the port, the history),
one line and a documented exit status each, and a start on a history it may not write (the page only reads).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.analysis.test_analysis_pipeline import read_only
from tests.ui.conftest import REPO, free_port, stop_process_group

pytestmark = pytest.mark.slow


def _env(history: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without the test session's Airflow and deployment settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLPERF_"))}
    return {**env, "PYTHONPATH": str(REPO), "MLPERF_HISTORY_URL": f"sqlite:///{history}",
            "AIRFLOW__API__WORKERS": "1", **extra}


def _ui(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "include.apps.ui", "--airflow-home", str(tmp_path / "airflow"),
                           "--artifacts", str(tmp_path / "artifacts"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def history(tmp_path: Path) -> Path:
    from tests.ui.seed import seed_history

    path = tmp_path / "history.sqlite"
    seed_history(f"sqlite:///{path}", tmp_path / "artifacts")
    return path


def test_a_taken_port_is_one_line_before_airflow_starts(tmp_path, history):
    """Before: the login printed, then `airflow api-server` failed with the bind error buried in its log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _ui(tmp_path, _env(history), "--port", str(port))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == (f"error: port {port} on 127.0.0.1 is taken (Address already in use): stop what listens "
                           f"there, or choose another port with MLPERF_UI_PORT=<port> make ui\n")
    assert "login:" not in done.stdout
    assert not (tmp_path / "airflow" / "airflow.db").exists()          # Airflow was not touched


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_a_port_that_is_no_port_is_one_line(tmp_path, history, value):
    """Before: MLPERF_UI_PORT=abc was a traceback (ValueError) from building the argument parser."""
    done = _ui(tmp_path, _env(history, MLPERF_UI_PORT=value))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == f"error: MLPERF_UI_PORT={value!r} is not a port number (1-65535)\n"


def test_a_corrupt_history_is_one_line_before_airflow_starts(tmp_path, history):
    history.write_bytes(b"this is not a database" * 200)
    done = _ui(tmp_path, _env(history), "--port", str(free_port()))
    assert done.returncode == 3, done.stderr[-2000:]
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: history database sqlite:///{history} unavailable") and "not a database" in line
    assert "login:" not in done.stdout and not (tmp_path / "airflow" / "airflow.db").exists()


def test_a_history_it_may_not_write_is_shown(tmp_path, history):
    """Before: `make ui` stopped with 'attempt to write a readonly database' (it refreshed the published results);
    now it says it shows the history as it is, starts, and the page reads it."""
    port = free_port()
    before = history.read_bytes()
    with read_only(history):
        proc = subprocess.Popen([sys.executable, "-m", "include.apps.ui", "--airflow-home", str(tmp_path / "airflow"),
                                 "--artifacts", str(tmp_path / "artifacts"), "--port", str(port)],
                                env=_env(history), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            printed = []
            for line in proc.stdout:
                printed.append(line)
                if line.startswith("Ctrl-C"):
                    break
            text = "".join(printed)
            assert "login:" in text, text[-3000:]
            assert "note: the history cannot be written" in text and "shown as it is" in text, text[-3000:]
            password = next(line for line in printed if line.startswith("login:")).split()[3]
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                        break
                assert proc.poll() is None and time.monotonic() < deadline, "the api-server did not answer"
                time.sleep(1)
            token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
            assert token.status_code == 201, token.text
            runs = httpx.get(f"{base}/mlperf-benchmarks/api/runs", timeout=30,
                             headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert runs.status_code == 200 and runs.json()["runs"], runs.text[:500]
        finally:
            stop_process_group(proc)
    assert history.read_bytes() == before
