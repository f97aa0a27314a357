"""CPU cost of the HTTP path per output token, by vLLM stream interval, on the tiny model (issue 17's 74% lead).

Starts `python -m mlperf_sut serve` (the production way) once per stream interval and drives it with the SUT's own
HTTP backend (no LoadGen: a reporter that only counts), all queries at once as Offline issues them. Reads the CPU
seconds of the server's API process (the exec'd `serve` pid; vLLM's engine core is a separate child and not
counted) and of this client process, over the output tokens generated: microseconds per token. At an H200's
~7,800 tokens/s per server, a cost of C us/token keeps C * 7,800 / 1e6 of a core busy on the server's one event loop.

    VLLM_CPU_KVCACHE_SPACE=1 .venv-sut/bin/python benchmarks/http_stream_cost.py
Last line: `stream_interval=N server_us_per_token=.. client_us_per_token=.. tokens_per_s=..` for each interval.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "sut_image"))

START_TIMEOUT_S = 420


class CountingReporter:
    """The harness's side of the backend, reduced to counting tokens and noticing the last completion."""

    def __init__(self, expected: int) -> None:
        self.tokens = 0
        self.completed = 0
        self.expected = expected
        self.error: BaseException | None = None
        self.done = threading.Event()

    def first_token(self, query, token_id) -> None:
        pass

    def complete(self, query, token_ids, endpoint=None) -> None:
        self.tokens += len(token_ids)
        self.completed += 1
        if self.completed == self.expected:
            self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def generated(self, count: int) -> None:
        pass


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(model: Path, port: int, interval: int, max_num_seqs: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "sut_image")}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlperf_sut", "serve", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--max-model-len", "1024", "--max-num-seqs", str(max_num_seqs),
             # as on the H200s: a model directory without a tokenizer (no detokenising in the server)
             "--skip-tokenizer-init", "--engine-arg", f"stream_interval={interval}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return wait_until_serving(process, port, log)


def wait_until_serving(process: subprocess.Popen, port: int, log: Path) -> subprocess.Popen:
    """`process` once its /health answers; killed (its group) with an error naming `log` if it exits or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S} s; see {log}")


def measure(model: Path, prompts: list[tuple[int, ...]], interval: int, max_num_seqs: int, in_flight: int,
            port: int, log: Path) -> dict:
    from mlperf_sut.backends.base import Query
    from mlperf_sut.backends.http import HttpBackend, HttpOptions
    from mlperf_sut.generation import BENCHMARK_GENERATION

    server = start_server(model, port, interval, max_num_seqs, log)
    try:
        backend = HttpBackend([f"http://127.0.0.1:{port}"], model.name, BENCHMARK_GENERATION,
                              report_first_token=False, options=HttpOptions(max_in_flight_per_endpoint=in_flight))
        reporter = CountingReporter(len(prompts))
        backend.start(reporter)
        try:
            server_cpu, client_cpu, start = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
            backend.submit([Query(i, i, p) for i, p in enumerate(prompts)])
            reporter.done.wait()
            wall = time.perf_counter() - start
            server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
        finally:
            backend.stop()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    if reporter.error is not None:
        raise RuntimeError(f"stream_interval={interval}: {reporter.error}")
    tokens = reporter.tokens
    return {"stream_interval": interval, "in_flight": in_flight, "server_us_per_token": round(server_cpu / tokens * 1e6, 1),
            "client_us_per_token": round(client_cpu / tokens * 1e6, 1), "tokens_per_s": round(tokens / wall, 1),
            "tokens": tokens, "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / ".cache" / "tiny-llama")
    parser.add_argument("--dataset", type=Path, default=REPO / ".cache" / "tiny-cnn" / "cnn_eval.json")
    parser.add_argument("--queries", type=int, default=512, help="queries per measurement, issued at once")
    parser.add_argument("--configs", default="1:64,128:64,128:128",
                        help="INTERVAL:IN_FLIGHT pairs to compare: vLLM's stream interval (1: its default) and the "
                             "client's requests in flight (max_num_seqs: nothing waits in the server)")
    parser.add_argument("--max-num-seqs", type=int, default=64, help="the server's batch (default 64)")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()

    samples = json.loads(args.dataset.read_text())
    prompts = [tuple(samples[i % len(samples)]["tok_input"]) for i in range(args.queries)]
    rows = []
    for config in args.configs.split(","):
        interval, in_flight = (int(x) for x in config.split(":"))
        row = measure(args.model, prompts, interval, args.max_num_seqs, in_flight, args.port,
                      args.log_dir / f"http_stream_cost-{interval}-{in_flight}.log")
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(" ".join(f"stream_interval={r['stream_interval']} in_flight={r['in_flight']} server_us_per_token={r['server_us_per_token']} "
                   f"client_us_per_token={r['client_us_per_token']} tokens_per_s={r['tokens_per_s']}" for r in rows))


if __name__ == "__main__":
    main()
