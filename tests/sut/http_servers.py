"""Real vLLM servers for the HTTP backend's tests, started the production way (`python -m mlperf_sut serve`).

Each server runs in its own process group, so killing the group also ends vLLM's engine-core child: a test that
fails never leaves an engine behind.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Starting a CPU engine takes 20-40 s on an idle machine; much longer when the cores are shared.
START_TIMEOUT_S = 420.0
STOP_GRACE_S = 15.0


def free_port() -> int:
    """A port nothing listens on right now (also what an unreachable endpoint looks like)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(slots=True)
class VllmServer:
    """One `serve` process and where its log goes."""

    node: str
    url: str
    process: subprocess.Popen
    log: Path

    def endpoint(self) -> str:
        """The `--endpoint` value naming this server."""
        return f"{self.node}={self.url}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole group: the server dies like a lost node, with connections cut mid-stream."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM for a clean shutdown, then SIGKILL the group whatever is left of it."""
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def start_servers(nodes: list[str], model: Path, log_dir: Path, engine_flags: list[str],
                  env: dict[str, str]) -> list[VllmServer]:
    """Start one server per node, all at once, and wait until every one serves the model."""
    servers: list[VllmServer] = []
    try:
        for node in nodes:
            port = free_port()
            log = log_dir / f"serve-{node}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mlperf_sut", "serve", "--model", str(model), "--host", "127.0.0.1",
                     "--port", str(port), *engine_flags],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            servers.append(VllmServer(node, f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + START_TIMEOUT_S
        for server in servers:
            _wait_until_serving(server, model.name, deadline)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def _wait_until_serving(server: VllmServer, model_name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"vLLM server {server.node} exited with {server.process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/v1/models", timeout=2) as response:
                if model_name in {m["id"] for m in json.load(response)["data"]}:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"vLLM server {server.node} not serving after {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
