"""The HTTP backend end to end: the SUT's CLI drives two real vLLM servers started with `python -m mlperf_sut serve`.

The servers start once for the module (each takes 20-40 s on an idle CPU). The test that kills a server runs last.
"""
from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from conftest import REPO, run_cli, sut_env
from http_servers import VllmServer, free_port, start_servers
from mlperf_sut.engine import EngineOptions
from mlperf_sut.generation import BENCHMARK_GENERATION
from mlperf_sut.serve import VLLM_SERVER_MODULE, vllm_server_argv
from mlperf_sut.server_card import KEEP_ALIVE_S, MIDDLEWARE

SAMPLES = 16
# float32 rather than the tiny model's bfloat16: exact ties between bfloat16 logits could let batch composition
# change a greedy choice, and the test compares ids across differently batched requests.
ENGINE_FLAGS = ["--dtype", "float32", "--max-model-len", "1024"]
RUN_TIMEOUT_S = 300
# A failing endpoint must end the run within this bound (the run itself would take minutes).
FAILURE_BOUND_S = 60


@pytest.fixture(scope="module")
def servers(tiny_model, tmp_path_factory) -> Iterator[dict[str, VllmServer]]:
    started = start_servers(["a", "b"], tiny_model, tmp_path_factory.mktemp("servers"), ENGINE_FLAGS, sut_env())
    try:
        yield {server.node: server for server in started}
    finally:
        for server in started:
            server.stop()


def run_args(model: Path, dataset: Path, output_dir: Path, scenario: str, mode: str, endpoints: list[str],
             overrides: list[str], samples: int = SAMPLES) -> list[str]:
    """`run` through the http backend. No engine flags: result.json takes the servers' from their cards."""
    return ["run", "--backend", "http", "--scenario", scenario, "--mode", mode, "--model", str(model),
            "--dataset", str(dataset), "--total-sample-count", str(samples), "--output-dir", str(output_dir),
            "--node", "coordinator", "--progress-interval", "1",
            *(f"--endpoint={e}" for e in endpoints), *(f"--override={o}" for o in overrides)]


def read_result(output_dir: Path) -> dict:
    return json.loads((output_dir / "result.json").read_text())


def generate_directly(server: VllmServer, model_name: str, prompt: list[int]) -> list[int]:
    """The ids the server generates for `prompt` in one non-streamed request with the benchmark's settings."""
    g = BENCHMARK_GENERATION
    body = {"model": model_name, "prompt": prompt, "return_token_ids": True, "max_tokens": g.max_tokens,
            "min_tokens": g.min_tokens, "temperature": g.temperature, "top_k": g.top_k, "seed": g.seed}
    request = urllib.request.Request(f"{server.url}/v1/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["choices"][0]["token_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("scenario, overrides", [
    ("Offline", []),
    ("Server", ["target_qps=20"]),
])
def test_run_spreads_over_both_endpoints_with_exact_token_ids(tiny_model, tiny_dataset, servers, tmp_path, scenario,
                                                              overrides):
    endpoints = [servers["a"].endpoint(), servers["b"].endpoint()]
    done = run_cli(*run_args(tiny_model, tiny_dataset, tmp_path, scenario, "accuracy", endpoints, overrides),
                   timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]

    result = read_result(tmp_path)
    assert result["status"] == "completed" and result["backend"] == "http"
    shares = {e["node"]: e for e in result["endpoints"]}
    assert set(shares) == {"a", "b"}, result["endpoints"]
    assert {shares[node]["url"] for node in shares} == {servers["a"].url, servers["b"].url}
    assert all(share["samples_completed"] > 0 for share in shares.values()), result["endpoints"]
    assert sum(s["samples_completed"] for s in shares.values()) == result["counts"]["samples_completed"] == SAMPLES
    assert sum(s["output_tokens"] for s in shares.values()) == result["counts"]["output_tokens"] > 0
    # what served the queries is the servers' (their cards), not the coordinator's defaults
    assert result["engine"]["dtype"] == "float32" and result["engine"]["max_model_len"] == 1024, result["engine"]
    assert result["engine"]["stream_interval"] == BENCHMARK_GENERATION.max_tokens
    assert result["engine_preset"] is None                     # the servers were started without --engine-preset
    assert result["model"]["load_format"] == result["engine"]["load_format"] == "auto" and result["accuracy_meaningful"]
    assert all(share["accelerator"] == result["accelerator"] for share in shares.values()), result["endpoints"]
    assert result["accelerator"]["kind"] == "cpu" and result["host"]["cpu_model"]

    prompts = json.loads(tiny_dataset.read_text())
    logged = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
    assert sorted(entry["qsl_idx"] for entry in logged) == list(range(SAMPLES))
    for entry in logged:
        ids = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.int32).tolist()
        expected = generate_directly(servers["a"], tiny_model.name, prompts[entry["qsl_idx"]]["tok_input"])
        assert ids == expected, f"sample {entry['qsl_idx']}"


@pytest.mark.slow
def test_unreachable_endpoint_fails_fast_at_start(tiny_model, tiny_dataset, servers, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    endpoints = [servers["a"].endpoint(), f"gone={dead}"]
    started = time.monotonic()
    done = run_cli(*run_args(tiny_model, tiny_dataset, tmp_path, "Offline", "performance", endpoints,
                             ["min_duration=0"]), timeout=RUN_TIMEOUT_S)
    assert done.returncode == 1, done.stderr[-3000:]
    assert time.monotonic() - started < FAILURE_BOUND_S
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("error: run failed:") and dead in message and "Cannot connect" in message, message
    assert "Traceback" not in done.stderr and f"vLLM server log of gone ({dead})" in message   # where to look
    result = read_result(tmp_path)
    assert result["status"] == "failed"
    assert dead in result["error"] and servers["a"].url not in result["error"]


def test_endpoint_with_a_path_is_bad_input(tiny_model, tiny_dataset, tmp_path):
    done = run_cli(*run_args(tiny_model, tiny_dataset, tmp_path, "Offline", "performance",
                             ["a=http://127.0.0.1:8000/v1"], []), timeout=RUN_TIMEOUT_S)
    assert done.returncode == 2
    assert "http://127.0.0.1:8000/v1" in done.stderr and "without /v1" in done.stderr


def test_serve_hands_engine_flags_to_vllm_and_serves_under_the_basename(tiny_model):
    options = EngineOptions.for_model(tiny_model, dtype="float32", max_num_seqs=8, kv_cache_dtype="fp8")
    assert vllm_server_argv(tiny_model, "0.0.0.0", 8001, options) == [
        sys.executable, "-m", VLLM_SERVER_MODULE, "--model", str(tiny_model), "--served-model-name", tiny_model.name,
        "--host", "0.0.0.0", "--port", "8001", "--disable-uvicorn-access-log", "--middleware", MIDDLEWARE,
        "--dtype", "float32", "--tensor-parallel-size", "1", "--max-num-seqs", "8", "--load-format", "auto",
        "--kv-cache-dtype", "fp8", "--no-enable-prefix-caching", "--stream-interval", "128"]


@pytest.mark.slow
def test_served_server_keeps_an_idle_connection_longer_than_the_client_does(servers):
    """The client drops an idle connection after KEEP_ALIVE_S / 2; the server must not drop it first (vLLM's default
    is 5 s), or a query sent as the server closes it fails the run with "Server disconnected"."""
    url = urlsplit(servers["a"].url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        for request in range(2):
            if request:
                time.sleep(KEEP_ALIVE_S / 2 + 1)   # idle a little longer than the client ever keeps a connection
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), (request, status, servers["a"].log_tail())
            length = 0
            while (header := reader.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            reader.read(length)


@pytest.mark.slow
def test_endpoint_killed_mid_run_ends_the_run_naming_it(tiny_model, tiny_dataset, servers, tmp_path):
    """Runs last of the tests on the servers: it kills server b. Offline with 4,000 queries would keep both servers busy for minutes."""
    endpoints = [servers["a"].endpoint(), servers["b"].endpoint()]
    args = run_args(tiny_model, tiny_dataset, tmp_path, "Offline", "performance", endpoints,
                    ["min_duration=0", "min_query_count=4000"], samples=64)
    stderr_log = tmp_path / "stderr.log"
    with stderr_log.open("w") as stderr_file:
        run = subprocess.Popen([sys.executable, "-m", "mlperf_sut", *args], stdout=subprocess.PIPE,
                               stderr=stderr_file, text=True, env=sut_env(), cwd=REPO)
    try:
        progressing = threading.Event()
        stdout: list[str] = []

        def watch() -> None:
            for line in run.stdout:
                stdout.append(line)
                match = re.match(r"progress: (\d+)/", line)
                if match and int(match[1]) >= 50:
                    progressing.set()
            progressing.set()  # the run ended early: the assertion below shows why

        threading.Thread(target=watch, daemon=True).start()
        assert progressing.wait(RUN_TIMEOUT_S) and run.poll() is None, (
            f"the run ended before server b was killed:\n{stderr_log.read_text()[-3000:]}\n"
            f"--- server a's log:\n{servers['a'].log_tail()}\n--- server b's log:\n{servers['b'].log_tail()}")
        servers["b"].kill()
        killed = time.monotonic()
        run.wait(FAILURE_BOUND_S)
        assert time.monotonic() - killed < FAILURE_BOUND_S
    finally:
        run.kill()
        run.wait()
    message = stderr_log.read_text().strip().splitlines()[-1]
    assert run.returncode == 1, message
    assert message.startswith("error: run failed:") and f"endpoint {servers['b'].url}" in message, message
    assert "Traceback" not in stderr_log.read_text() and "vLLM server log of" in message
    result = read_result(tmp_path)
    assert result["status"] == "failed" and servers["b"].url in result["error"]


def test_serve_turns_prefix_caching_on_only_when_asked(tiny_model):
    """vLLM's server caches prompt prefixes by default; LoadGen repeats samples, so the SUT says --no-... unless asked."""
    on = vllm_server_argv(tiny_model, "0.0.0.0", 8001, EngineOptions.for_model(tiny_model, enable_prefix_caching=True))
    assert "--enable-prefix-caching" in on and "--no-enable-prefix-caching" not in on
    off = vllm_server_argv(tiny_model, "0.0.0.0", 8001, EngineOptions.for_model(tiny_model))
    assert "--no-enable-prefix-caching" in off and "--enable-prefix-caching" not in off


@contextlib.contextmanager
def fake_server(model_name: str, card: dict | None) -> Iterator[str]:
    """A stand-in for a served vLLM: /health, /v1/models, GET /mlperf/server answering `card` (404 without one), and
    completions of one token each, streamed as vLLM streams them. Yields its URL."""
    import http.server

    class Served(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = {"/health": b"", "/v1/models": json.dumps({"data": [{"id": model_name}]}).encode()}
            if card is not None:
                body["/mlperf/server"] = json.dumps(card).encode()
            if self.path not in body:
                self.send_error(404)
                return
            self._send(body[self.path], "application/json")

        def do_POST(self) -> None:  # noqa: N802
            prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["prompt"]
            chunk = {"choices": [{"prompt_token_ids": prompt, "token_ids": [7], "finish_reason": "length"}],
                     "usage": {"completion_tokens": 1}}
            self._send(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode(), "text/event-stream")

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Served)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_server_without_a_card_is_refused_at_start(tiny_model, tiny_dataset, tmp_path):
    """A vLLM server not started by `serve` (no GET /mlperf/server) would leave result.json with the coordinator's
    machine as the accelerator: the run refuses it before LoadGen starts, and says how to start it."""
    with fake_server(tiny_model.name, card=None) as url:
        done = run_cli(*run_args(tiny_model, tiny_dataset, tmp_path, "Offline", "performance", [f"plain={url}"],
                                 ["min_duration=0"]), timeout=RUN_TIMEOUT_S)
    assert done.returncode == 1, done.stderr[-3000:]
    message = done.stderr.strip().splitlines()[-1]
    assert url in message and "/mlperf/server answered HTTP 404" in message and "mlperf_sut serve" in message, message
    assert read_result(tmp_path)["status"] == "failed"


def test_result_records_the_servers_engine_and_preset_from_their_card(tiny_model, tiny_dataset, tmp_path):
    """The coordinator's own flags (none here) say nothing of the servers: result.json takes their card's accelerator,
    engine and engine preset."""
    preset = {"name": "h200-fp8", "overrides": {"max_num_seqs": 512}}
    card = {"accelerator": {"kind": "gpu", "name": "NVIDIA H200", "count": 1, "driver": "580", "memory_gib": 139.8},
            "engine": {"dtype": "bfloat16", "tensor_parallel_size": 1, "max_num_seqs": 512,
                       "max_num_batched_tokens": 49152, "gpu_memory_utilization": None, "max_model_len": 4096,
                       "load_format": "dummy"},
            "engine_preset": preset}
    with fake_server(tiny_model.name, card) as url:
        done = run_cli(*run_args(tiny_model, tiny_dataset, tmp_path, "Offline", "performance", [f"gpu={url}"],
                                 ["min_duration=0", "min_query_count=16"]), timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_result(tmp_path)
    assert result["engine_preset"] == preset and result["engine"] == card["engine"]
    assert result["accelerator"] == card["accelerator"] and result["model"]["load_format"] == "dummy"
