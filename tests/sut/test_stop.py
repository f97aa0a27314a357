"""A stopped SUT leaves nothing running and no result that could pass for its own: real vLLM on the CPU, real
signals, the processes left counted through /proc.

Before process_guard, SIGTERM ended the SUT with exit 143 and no result.json, and after SIGTERM or SIGKILL vLLM's
engine core and its worker were reparented to PID 1 and still alive 75 s later; a rerun into the same folder that
was killed left the first run's result.json and logs to be reported as its own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import textwrap

import pytest

from conftest import REPO, sut_env

GONE_WITHIN_S = 10.0


def _table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live process."""
    table = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if stat[0] not in ("Z", "X"):
            table[int(entry)] = (int(stat[1]), cmdline.strip())
    return table


def _descendants(root: int) -> dict[int, str]:
    table, found, todo = _table(), {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, cmdline) in table.items():
            if ppid == parent:
                found[pid] = cmdline
                todo.append(pid)
    return found


def _left(pids: dict[int, str]) -> dict[int, str]:
    """Those of `pids` still running (the same processes: the same command line)."""
    table = _table()
    return {pid: cmd for pid, cmd in pids.items() if pid in table and table[pid][1] == cmd}


def _until(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the SUT exited {proc.returncode} before {what}:\n{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.2)
    pytest.fail(f"not within {timeout_s:g} s: {what}" + (f"\n{log.read_text()[-3000:]}" if log else ""))


def _start(tiny_model, tiny_dataset, out: Path, log: Path, *extra: str) -> subprocess.Popen:
    """The SUT as the runners start it: `python -m mlperf_sut run`, in a session of its own."""
    command = [sys.executable, "-m", "mlperf_sut", "run", "--scenario", "Offline", "--mode", "performance",
               "--enforce-eager", "--model", str(tiny_model), "--dataset", str(tiny_dataset),
               "--total-sample-count", "4", "--override", "min_duration=0", "--output-dir", str(out), *extra]
    with open(log, "w") as sink:
        return subprocess.Popen(command, cwd=REPO, env=sut_env(), stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _engine_started(proc: subprocess.Popen):
    return any(cmd.startswith("VLLM::EngineCore") for cmd in _descendants(proc.pid).values())


def _cleanup(proc: subprocess.Popen) -> None:
    """Whatever a failed assertion left: the test's own processes go."""
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


@pytest.mark.slow
def test_sigterm_stops_the_engine_and_result_json_says_so(tiny_model, tiny_dataset, tmp_path):
    """SIGTERM in the middle of LoadGen's test (the engine generating): exit 143, result.json failed "stopped by
    SIGTERM" with the process's stop stamped, and nothing of the SUT left running 10 s after it exited."""
    out, log = tmp_path / "out", tmp_path / "sut.log"
    proc = _start(tiny_model, tiny_dataset, out, log, "--override", "min_query_count=20000",
                  "--progress-interval", "1")
    try:
        _until(lambda: "progress:" in log.read_text(), 120, "LoadGen's test started", proc, log)
        started = _descendants(proc.pid)     # the watchdog, the resource tracker, EngineCore, its worker
        assert any(cmd.startswith("VLLM::EngineCore") for cmd in started.values()), started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143, log.read_text()[-3000:]
        _until(lambda: not _left(started), GONE_WITHIN_S, f"the SUT's processes gone: {_left(started)}", log=log)
    finally:
        _cleanup(proc)
    result = json.loads((out / "result.json").read_text())
    assert (result["status"], result["error"]) == ("failed", "stopped by SIGTERM")
    assert [t["status"] for t in result["process"]["tests"]] == ["failed"]
    assert "error: stopped by SIGTERM" in log.read_text()


@pytest.mark.slow
def test_a_rerun_killed_leaves_no_earlier_result_and_no_engine(tiny_model, tiny_dataset, tmp_path):
    """A completed run, then a rerun into the same folder SIGKILLed once its engine has started: the first run's
    files were moved aside (the line says where), no result.json is left to pass for the rerun's, and the engine's
    processes are gone within 10 s of the kill."""
    out = tmp_path / "single" / "local" / "Offline" / "performance"
    first = _start(tiny_model, tiny_dataset, out, tmp_path / "first.log", "--override", "min_query_count=4",
                   "--run-id", "first")
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert json.loads((out / "result.json").read_text())["run_id"] == "first"

    log = tmp_path / "rerun.log"
    proc = _start(tiny_model, tiny_dataset, out, log, "--override", "min_query_count=20000", "--run-id", "rerun")
    try:
        _until(lambda: _engine_started(proc), 120, "vLLM's engine core started", proc, log)
        started = _descendants(proc.pid)
        proc.kill()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        _until(lambda: not _left(started), GONE_WITHIN_S, f"the engine's processes gone: {_left(started)}", log=log)
    finally:
        _cleanup(proc)
    assert not (out / "result.json").exists()
    summary = out / "mlperf_log_summary.txt"
    assert not summary.exists() or "Result is" not in summary.read_text()
    [aside] = (out.parent / ".earlier").iterdir()
    assert aside.name.startswith("performance-")
    assert f"moved to {aside}" in log.read_text()
    earlier = json.loads((aside / "result.json").read_text())
    assert (earlier["run_id"], earlier["status"]) == ("first", "completed")
    assert (aside / "mlperf_log_summary.txt").is_file()


# A process that takes its signals as `python -m mlperf_sut run` does; a child it forks (vLLM forks its engine core on
# a GPU host) gets SIGTERM, which must not stop the parent (the wakeup descriptor is inherited over fork); then the
# parent's own SIGTERM stops it, on the signal's thread, while the main thread is busy elsewhere.
FORKING = textwrap.dedent("""
    import os, signal, sys, time
    from mlperf_sut import process_guard
    process_guard.stop_on_signals()
    process_guard.on_stop(lambda name: print("stopped by", name, flush=True))
    ready, up = os.pipe()
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))    # vLLM's engine core handles SIGTERM itself
        os.write(up, b"x")
        time.sleep(30)
        os._exit(1)
    os.read(ready, 1)
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
    time.sleep(1)
    print("still running", flush=True)
    time.sleep(30)      # the main thread does nothing about the signal: the stop is the signal thread's
""")


def test_a_forked_childs_sigterm_is_not_the_sut_s_and_the_sut_s_own_stops_it(tmp_path):
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    proc = subprocess.Popen([sys.executable, str(script)], env=sut_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "still running\n"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 143 and time.monotonic() - t0 < 5
    assert proc.stdout.read() == "stopped by SIGTERM\n"
