"""A stand-in for the SUT image's entrypoint (`python -m mlperf_sut`) that the emulated node agent runs locally.

No GPU, vLLM or real cluster can run in these tests; this script keeps the contract the Kubernetes runner relies on:
`run ... --output-dir DIR` writes LoadGen-like files and result.json into DIR (on the artefacts volume) and logs to
stdout; `serve --port N` answers GET /health once "loaded". Test-only flags steer failures:

  --fake-exit-code N        exit with N after logging (a crashing SUT)
  --fake-fail-once MARKER   exit 1 the first time (MARKER file absent), succeed on the retry
  --fake-sleep S            keep running S seconds before finishing (a long benchmark)
  --fake-ready-delay S      `serve`: /health answers 503 for S seconds, then 200
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import sys
import time
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlperf_sut (fake)")
    p.add_argument("command", choices=["run", "serve"])
    p.add_argument("--output-dir")
    p.add_argument("--scenario", default="Offline")
    p.add_argument("--mode", default="performance")
    p.add_argument("--node", default=os.environ.get("MLPERF_NODE", "unknown"))
    p.add_argument("--model")
    p.add_argument("--dataset")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--fake-exit-code", type=int, default=0)
    p.add_argument("--fake-fail-once")
    p.add_argument("--fake-sleep", type=float, default=0.0)
    p.add_argument("--fake-ready-delay", type=float, default=0.0)
    return p


def run(args: argparse.Namespace) -> int:
    k8s_node = os.environ.get("MLPERF_K8S_NODE_NAME")
    print(f"fake SUT: {args.scenario} {args.mode} on node {args.node} (k8s node {k8s_node})", flush=True)
    for i in range(3):
        print(f"fake SUT: progress {i + 1}/3", flush=True)
    if args.fake_sleep:
        time.sleep(args.fake_sleep)
    if args.fake_fail_once:
        marker = Path(args.fake_fail_once)
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("failed once\n")
            print("fake SUT: CUDA error: an illegal memory access was encountered (first try)", flush=True)
            return 1
    if args.fake_exit_code:
        print(f"fake SUT: engine died, exiting with {args.fake_exit_code}", flush=True)
        return args.fake_exit_code
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mlperf_log_summary.txt").write_text(f"Scenario : {args.scenario}\nResult is : VALID\n")
    (out / "mlperf_log_detail.txt").write_text("")
    (out / "result.json").write_text(json.dumps({
        "schema_version": 1, "fake": True, "scenario": args.scenario, "mode": args.mode, "node": args.node,
    }))
    print(f"fake SUT: wrote {out / 'result.json'}", flush=True)
    return 0


def serve(args: argparse.Namespace) -> int:
    if args.fake_exit_code:
        print(f"fake vLLM: failed to load model {args.model}, exiting with {args.fake_exit_code}", flush=True)
        return args.fake_exit_code
    ready_at = time.monotonic() + args.fake_ready_delay

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            ok = self.path == "/health" and time.monotonic() >= ready_at
            self.send_response(200 if ok else 503)
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake vLLM: serving {args.model} on {args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run(args) if args.command == "run" else serve(args)


if __name__ == "__main__":
    sys.exit(main())
