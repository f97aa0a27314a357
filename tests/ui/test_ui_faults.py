"""The Benchmarks page in a real `airflow api-server` when things go wrong: a history database that goes bad (a real
SQLite file corrupted in place, replaced by garbage, truncated) and comes back while the server keeps running,
out-of-range query values, and a forged Host header. Real HTTP against the real plugin, no Airflow mocked.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import pytest

from tests.ui.conftest import PASSWORDS, running_api_server

pytestmark = pytest.mark.slow

PAGE = "/mlperf-benchmarks/"
API = "/mlperf-benchmarks/api/runs"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def server(airflow_home, tmp_path_factory):
    from tests.ui.seed import seed_history

    data_dir = tmp_path_factory.mktemp("ui-faults")
    history = data_dir / "history.sqlite"
    seeded = seed_history(f"sqlite:///{history}", data_dir / "artifacts")
    env = {**os.environ, **airflow_home["env"], "PYTHONPATH": airflow_home["pythonpath"],
           "MLPERF_HISTORY_URL": f"sqlite:///{history}", "MLPERF_ARTIFACTS_DIR": str(data_dir / "artifacts")}
    with running_api_server(env, data_dir / "api-server.log") as base:
        token = httpx.post(f"{base}/auth/token", json={"username": "viewer", "password": PASSWORDS["viewer"]},
                           timeout=30)
        assert token.status_code == 201, token.text
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                              timeout=60)
        yield {"client": client, "history": history, "good": history.read_bytes(), "runs": len(seeded.run_ids),
               "base": base}
        client.close()


def _healthy(server) -> None:
    client = server["client"]
    page = client.get(PAGE, headers=HTML)
    assert page.status_code == 200 and "Benchmark history unavailable" not in page.text, page.text[:500]
    assert len(client.get(API).json()["runs"]) == server["runs"]


def _unavailable(server) -> None:
    client = server["client"]
    for _ in range(2):                                            # and again: no state is kept between requests
        page = client.get(PAGE, headers=HTML)
        assert page.status_code == 503, page.text[:1000]
        assert "Benchmark history unavailable" in page.text and "Traceback" not in page.text
        api = client.get(API)
        assert api.status_code == 503 and "unavailable" in api.json()["detail"], api.text[:500]
        run = client.get("/mlperf-benchmarks/runs/x", headers=HTML)
        assert run.status_code == 503 and "Benchmark history unavailable" in run.text


def _replace(path: Path, data: bytes) -> None:
    """Another file renamed over the history (what a restore from a backup or `mv` does): a new inode."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def test_a_corrupt_history_is_the_unavailable_page_and_the_page_recovers_by_itself(server):
    """Before: plain 500s on every page, still there after the file was restored, until a restart."""
    history, good = server["history"], server["good"]
    _healthy(server)
    # overwritten in place
    with open(history, "r+b") as f:
        f.write(b"this is not a database" * 100)
    _unavailable(server)
    history.write_bytes(good)
    _healthy(server)
    # replaced by another file, and restored the same way
    _replace(history, b"garbage" * 4096)
    _unavailable(server)
    _replace(history, good)
    _healthy(server)
    # truncated: SQLite finds its pages missing ("database disk image is malformed")
    history.write_bytes(good[:len(good) // 3])
    _unavailable(server)
    history.write_bytes(good)
    _healthy(server)


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=99999999999999999999999",
                                   "until=9999-12-31", "since=0001-01-01", "since=0001-01-02&until=0001-01-10"])
def test_out_of_range_offsets_and_dates_are_400(server, query):
    """Before: 500 (OverflowError in the driver or in date arithmetic)."""
    client = server["client"]
    api = client.get(f"{API}?{query}")
    assert api.status_code == 400, api.text[:500]
    assert set(api.json()) == {"detail"}
    if query.startswith(("since", "until")):
        page = client.get(f"{PAGE}?{query}", headers=HTML)
        assert page.status_code == 400 and "Invalid filter" in page.text, page.text[:500]
        results = client.get(f"/mlperf-benchmarks/api/results?{query}")
        assert results.status_code == 400


def _raw_get(base: str, path: str, host: str) -> tuple[int, dict[str, str]]:
    """A GET with a Host header of the caller's choosing (httpx would send the real one)."""
    address, port = base.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(head[0].split()[1]), {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])}


def test_the_login_redirect_is_built_without_the_host_header(server):
    """Before: `next=http://evil.example/mlperf-benchmarks/...`: a forged Host header sent the user elsewhere."""
    status, headers = _raw_get(server["base"], f"{PAGE}runs/x?a=1", "evil.example")
    assert status == 303, headers
    location = headers["location"]
    assert "evil" not in location
    assert location == "/auth/login?next=%2Fmlperf-benchmarks%2Fruns%2Fx%3Fa%3D1", location
