"""The `local` runner: the SUT as processes of the SUT's own virtual environment on this machine.

The same `python -m mlperf_sut ...` command a pod would run. Each SUT process gets its own process group
(vLLM starts an engine-core child process), so a timeout, a failure or a killed Airflow task ends the whole group:
no orphaned engine is left holding a GPU (or, here, the CPU). Airflow stops a task with SIGTERM, whose handler only
calls the operator's on_kill and returns, and SIGKILLs it 5 s later: while the SUT runs, SIGTERM raises SutStopped
instead, so the group is ended before that; and a task process that dies anyway (SIGKILL, OOM) sends its SUT SIGTERM
(Linux's parent-death signal), which stops the engine. Output is written to a log file and streamed into the task
log line by line.

The coordinated branch's "nodes" are `serve` processes on free 127.0.0.1 ports. They must outlive the setup task
that starts them, so their process groups are recorded in `<run_dir>/distributed/servers.json`, which the
teardown task reads to stop them.

On a host with several GPUs, `MLPERF_LOCAL_GPUS` (e.g. `h200-0=0,h200-1=1`; `node=0:1` for two GPUs; the
deployment's `local_gpus`) gives each node its GPUs through CUDA_VISIBLE_DEVICES: one node per GPU without a cluster.
The coordinated run's LoadGen driver then sees no GPU (its servers hold them).
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from include.deployment import LOCAL_GPUS_ENV
from include.results.run_artifacts import write_runner_exit

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_BAD_INPUT = 2          # the SUT's exit code for bad input: retrying cannot help
KILL_GRACE_S = 10.0


PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _stop_with_the_task() -> None:
    """In the SUT's process, before it execs: SIGTERM to it when the task process dies, however it dies."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class SutFailed(RuntimeError):
    """The SUT exited non-zero or was killed; the message names the run, the exit code and the log's tail."""

    def __init__(self, message: str, returncode: int | None):
        super().__init__(message)
        self.returncode = returncode


class SutBadInput(SutFailed):
    """The SUT refused its input (exit 2): a retry would fail the same way."""


class SutStopped(SutFailed):
    """The task got SIGTERM (Airflow stopped it, or its worker is shutting down) while the SUT ran."""


@contextlib.contextmanager
def _sigterm_raises(message: str) -> Iterator[None]:
    """Inside the block SIGTERM raises SutStopped(message) (on the main thread, the only one that takes signals);
    the handler before it is restored on the way out, so a second SIGTERM cannot cut the group's kill short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum, frame):
        raise SutStopped(message, None)

    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def gpu_env(spec: dict[str, Any] | None, gpus: dict[str, str], node: str | None = None) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for a planned run (`spec`) or a node's server (`node`); {} without a GPU map.

    A coordinated run's driver gets none (an empty value): its servers hold the GPUs."""
    if not gpus:
        return {}
    if spec is not None and spec.get("label") == "coordinated":
        return {"CUDA_VISIBLE_DEVICES": ""}
    nodes = [node] if node is not None else list(spec["nodes"]) if spec else []
    missing = [n for n in nodes if n not in gpus]
    if missing:
        raise ValueError(f"{LOCAL_GPUS_ENV}: no GPU given for node(s) {', '.join(missing)} (have {', '.join(gpus)})")
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpus[n] for n in nodes)}


def sut_command(spec: dict[str, Any], sut_python: str) -> list[str]:
    """The command of one planned run: the same `python -m mlperf_sut ...` a pod runs."""
    return [sut_python, "-m", "mlperf_sut", *spec["arguments"]]


def sut_log_path(spec: dict[str, Any]) -> Path:
    """The SUT process's console log beside its tests' folders, named after them (performance+accuracy+TEST06.sut.log):
    a process that runs TEST06 alone never overwrites the log of one that ran performance."""
    dirs = [Path(test["output_dir"]) for test in spec["tests"]]
    return dirs[0].parent / f"{'+'.join(out.name for out in dirs)}.sut.log"


def serve_command(sut_python: str, model_path: str, port: int, engine_args: list[str],
                  host: str = "127.0.0.1") -> list[str]:
    """One node's vLLM server of the coordinated branch."""
    return [sut_python, "-m", "mlperf_sut", "serve", "--model", model_path, "--host", host, "--port", str(port),
            *engine_args]


def sut_env(extra: dict[str, str] | None = None, pythonpath: tuple[str, ...] = ()) -> dict[str, str]:
    """The SUT's environment: mlperf_sut importable from the checkout (then `pythonpath`, e.g. an offline vLLM
    bundle on a GPU host: the deployment's MLPERF_SUT_PYTHONPATH), a small CPU KV cache when there is no GPU."""
    env = dict(os.environ)    # the child's environment: a copy of ours (PATH, HOME, VLLM_*, ...), not a settings read
    # the Airflow side's PYTHONPATH is not the SUT's
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "sut_image"), *pythonpath])
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    for secret in ("MLPERF_HISTORY_URL", "MLPERF_NOTIFY_WEBHOOK"):   # the SUT needs neither
        env.pop(secret, None)
    env.update(extra or {})
    return env


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the group: a zombie holds no memory or GPU and its parent reaps it."""
    proc = Path("/proc")
    if not proc.is_dir():      # not Linux: ask the kernel whether the group exists at all
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()    # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def kill_group(pgid: int, grace_s: float = KILL_GRACE_S, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if not group_alive(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()        # reap our own child, so it does not count as alive
            if not group_alive(pgid):
                return
            time.sleep(0.1)
    if group_alive(pgid):
        log.error("process group %s still has members after SIGKILL: %s", pgid, group_members(pgid))


def run_command(cmd: list[str], *, log_path: Path, timeout_s: float, env: dict[str, str] | None = None,
                name: str = "SUT", echo: Callable[[str], None] | None = None) -> int:
    """Run `cmd` in its own process group; stream its output; kill the group on timeout or on any exception.

    Returns the exit code (0). Raises SutBadInput (exit 2), SutFailed (other codes, timeout).
    """
    echo = echo or (lambda line: log.info("%s", line))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=30)
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, text=True, errors="replace", bufsize=1,
                                preexec_fn=_stop_with_the_task if _PRCTL else None)
        pgid = proc.pid      # start_new_session: the child leads its own group

        def pump() -> None:
            for line in proc.stdout:    # type: ignore[union-attr]
                log_file.write(line)
                log_file.flush()
                tail.append(line.rstrip())
                echo(line.rstrip())

        reader = threading.Thread(target=pump, name=f"{name}-log", daemon=True)
        reader.start()
        timed_out = False
        try:
            try:
                with _sigterm_raises(f"{name}: stopped by SIGTERM (the task was stopped); process group {pgid} "
                                     f"killed. Log {log_path}"):
                    proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            # Whatever happened (exit, timeout, the Airflow task killed or stopped): nothing stays behind.
            kill_group(pgid, proc=proc)
            proc.wait()
            reader.join(timeout=5)
    code = proc.returncode
    last = "\n".join(tail)
    if timed_out:
        raise SutFailed(f"{name}: timed out after {timeout_s:.0f} s; process group {pgid} killed. "
                        f"Log {log_path}, last lines:\n{last}", None)
    if code == EXIT_BAD_INPUT:
        raise SutBadInput(f"{name}: the SUT refused its input (exit 2). Log {log_path}, last lines:\n{last}", code)
    if code != 0:
        raise SutFailed(f"{name}: exit code {code}. Log {log_path}, last lines:\n{last}", code)
    return code


def run_spec(spec: dict[str, Any], sut_python: str, pythonpath: tuple[str, ...] = (),
             gpus: dict[str, str] | None = None) -> dict[str, Any]:
    """One planned SUT process and its tests (`gpus`: the deployment's local_gpus). Every test's output directory
    starts empty, so a rerun never reports a stale result.json."""
    import shutil

    outs = [Path(test["output_dir"]) for test in spec["tests"]]
    for out in outs:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    log_path = sut_log_path(spec)
    cmd = sut_command(spec, sut_python)
    log.info("%s: %s", spec["name"], " ".join(cmd))
    try:
        run_command(cmd, log_path=log_path, timeout_s=spec["timeout_s"],
                    env=sut_env(gpu_env(spec, gpus or {}), pythonpath), name=spec["name"])
    except SutFailed as exc:    # the report must name the exit code and the log, not only the Airflow task log
        for out in outs:        # the test that failed, and those after it (never run); not those it completed
            if not _completed(out):
                write_runner_exit(out, exit_code=exc.returncode, log_path=str(log_path),
                                  reason=str(exc).split(". Log ")[0])
        raise
    return {"run": spec["name"], "output_dir": spec["output_dir"], "log": str(log_path)}


def _completed(out: Path) -> bool:
    """The SUT wrote a completed result.json there (an earlier test of a process that failed later)."""
    try:
        return json.loads((out / "result.json").read_text(encoding="utf-8")).get("status") == "completed"
    except (OSError, ValueError, AttributeError):
        return False


# ------------------------------------------------------------------------------------------------------------------
# vLLM servers of the coordinated branch
# ------------------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _state_file(run_dir: str) -> Path:
    return Path(run_dir) / "distributed" / "servers.json"


def start_servers(*, run_dir: str, nodes: list[str], model_path: str, engine_args: list[str], sut_python: str,
                  ready_timeout_s: float, pythonpath: tuple[str, ...] = (),
                  gpus: dict[str, str] | None = None) -> dict[str, str]:
    """One `serve` per node on a free 127.0.0.1 port, all starting at once; wait for each /health: {node: url}.

    On failure every server started here is stopped before the error (naming the node) is raised.
    """
    stop_servers(run_dir)     # a retried setup: never two servers for one "node"
    gpus = gpus or {}
    state: dict[str, dict[str, Any]] = {}
    procs: dict[str, subprocess.Popen] = {}
    state_file = _state_file(run_dir)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        for node in nodes:
            port = free_port()
            log_path = state_file.parent / f"server-{node}.log"
            cmd = serve_command(sut_python, model_path, port, engine_args)
            log.info("starting vLLM server for %s: %s", node, " ".join(cmd))
            with open(log_path, "w") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=sut_env(gpu_env(None, gpus, node), pythonpath), start_new_session=True)
            procs[node] = proc
            state[node] = {"url": f"http://127.0.0.1:{port}", "pgid": proc.pid, "log": str(log_path)}
            state_file.write_text(json.dumps(state, indent=2))
        deadline = time.monotonic() + ready_timeout_s
        waiting = set(nodes)
        while waiting:
            for node in sorted(waiting):
                proc = procs[node]
                if proc.poll() is not None:
                    raise RuntimeError(f"vLLM server of node {node} exited with {proc.returncode} before it was "
                                       f"ready; log {state[node]['log']}:\n{_tail(state[node]['log'])}")
                if _healthy(state[node]["url"]):
                    log.info("vLLM server of node %s ready at %s", node, state[node]["url"])
                    waiting.discard(node)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"vLLM servers of {sorted(waiting)} not ready after {ready_timeout_s:.0f} s")
            if waiting:
                time.sleep(1)
    except BaseException:
        stop_servers(run_dir)
        for proc in procs.values():
            proc.poll()
        raise
    return {node: s["url"] for node, s in state.items()}


def stop_servers(run_dir: str) -> list[str]:
    """Kill the process group of every server recorded for this run (idempotent); returns the nodes stopped."""
    state_file = _state_file(run_dir)
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    stopped = []
    for node, server in state.items():
        if group_alive(server["pgid"]):
            kill_group(server["pgid"])
            stopped.append(node)
    state_file.unlink()
    log.info("stopped vLLM servers: %s", stopped or "none were running")
    return stopped


def _tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
