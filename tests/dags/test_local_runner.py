"""The local runner leaves nothing behind: a timed-out, failed or interrupted SUT's whole process group is killed."""
from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from include.runners import local

# A "SUT" that starts a grandchild (as vLLM starts its engine core), prints, then sleeps or exits with a code.
CHILD = textwrap.dedent("""
    import os, subprocess, sys, time
    pidfile, action = sys.argv[1], sys.argv[2]
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    print("engine started", flush=True)
    if action == "sleep":
        time.sleep(600)
    sys.exit(int(action))
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _start(tmp_path: Path, action: str, timeout_s: float):
    script = tmp_path / "fake_sut.py"
    script.write_text(CHILD)
    pidfile = tmp_path / "pids"
    lines: list[str] = []
    call = lambda: local.run_command([sys.executable, str(script), str(pidfile), action],  # noqa: E731
                                     log_path=tmp_path / "logs" / "sut.log", timeout_s=timeout_s, name="fake",
                                     echo=lines.append)
    return call, pidfile, lines


def _pids(pidfile: Path) -> list[int]:
    return [int(p) for p in pidfile.read_text().split()]


def test_timeout_kills_the_whole_process_group(tmp_path):
    call, pidfile, lines = _start(tmp_path, "sleep", timeout_s=3)
    t0 = time.monotonic()
    with pytest.raises(local.SutFailed, match="timed out after 3 s; process group .* killed"):
        call()
    assert time.monotonic() - t0 < 20
    pids = _pids(pidfile)
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "SUT or its child survived the timeout"
    assert "engine started" in lines
    assert "engine started" in (tmp_path / "logs" / "sut.log").read_text()


@pytest.mark.parametrize("code, error", [(1, local.SutFailed), (2, local.SutBadInput)])
def test_failure_kills_leftover_children_and_says_why(tmp_path, code, error):
    call, pidfile, _ = _start(tmp_path, str(code), timeout_s=60)
    with pytest.raises(error, match=f"exit|refused") as info:
        call()
    assert info.value.returncode == code
    assert "engine started" in str(info.value)          # the log's tail is in the error
    time.sleep(0.5)
    assert not [p for p in _pids(pidfile) if _alive(p)], "the SUT's child outlived it"


def test_interrupted_task_kills_the_group(tmp_path):
    """Airflow's execution_timeout raises inside the task: the exception must still end the process group."""
    call, pidfile, _ = _start(tmp_path, "sleep", timeout_s=600)

    class Interrupt(Exception):
        pass

    import signal

    def handler(signum, frame):
        raise Interrupt()

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(3)
    try:
        with pytest.raises(Interrupt):
            call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    time.sleep(0.5)
    assert not [p for p in _pids(pidfile) if _alive(p)]


# A task process as Airflow 3 runs one: its SIGTERM handler only calls the operator's on_kill and returns, and the
# supervisor SIGKILLs it 5 s later (airflow.sdk.execution_time: task_runner's _on_term, supervisor's kill).
TASK = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    from include.runners import local
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    script, pidfile, log = sys.argv[1:4]
    try:
        local.run_command([sys.executable, script, pidfile, "sleep"], log_path=Path(log), timeout_s=600, name="fake")
    except local.SutStopped as stopped:
        print("raised:", stopped, flush=True)
        sys.exit(1)
""")


def _task_running_a_sut(tmp_path):
    """A task process whose local runner has started the stand-in SUT (and its child): (the task, the pid file)."""
    import subprocess

    (tmp_path / "fake_sut.py").write_text(CHILD)
    (tmp_path / "task.py").write_text(TASK)
    pidfile = tmp_path / "pids"
    task = subprocess.Popen([sys.executable, str(tmp_path / "task.py"), str(tmp_path / "fake_sut.py"), str(pidfile),
                             str(tmp_path / "sut.log")], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and len(pidfile.read_text().split()) == 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    return task, pidfile


def test_a_task_stopped_by_sigterm_ends_the_group(tmp_path):
    """Airflow stops a task with SIGTERM (marked failed, cleared, its worker shutting down): the SUT's group must end
    before the supervisor's SIGKILL, which would leave it running in its own session."""
    import signal
    import subprocess

    task, pidfile = _task_running_a_sut(tmp_path)
    task.send_signal(signal.SIGTERM)
    try:
        said, _ = task.communicate(timeout=5)
    except subprocess.TimeoutExpired:      # the supervisor's SIGKILL
        task.kill()
        said, _ = task.communicate()
    time.sleep(0.5)
    assert not [p for p in _pids(pidfile) if _alive(p)], "the SUT outlived its stopped task"
    assert "raised: fake: stopped by SIGTERM (the task was stopped); process group" in said


def test_a_task_killed_outright_stops_its_sut(tmp_path):
    """A task process that dies without a word (SIGKILL, the OOM killer): its SUT gets SIGTERM, which stops the engine
    (the SUT's own watchdog then ends what the engine left)."""
    import signal
    import subprocess

    task, pidfile = _task_running_a_sut(tmp_path)
    sut, grandchild = _pids(pidfile)
    task.send_signal(signal.SIGKILL)
    task.communicate()
    deadline = time.monotonic() + 5
    while _alive(sut) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(grandchild, signal.SIGKILL)        # the fake SUT has no watchdog of its own
    assert not _alive(sut), "the SUT outlived its killed task"


def test_success_returns_zero(tmp_path):
    call, pidfile, lines = _start(tmp_path, "0", timeout_s=60)
    assert call() == 0
    time.sleep(0.5)
    assert not [p for p in _pids(pidfile) if _alive(p)]


def test_servers_are_stopped_when_one_fails_to_start(tmp_path):
    """A fake `serve` that dies for one node: start_servers raises naming it and stops the other one."""
    fake = tmp_path / "fake_python"
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, time, http.server, threading
        args = sys.argv[1:]
        if "/bad-model" in args:
            print("no such model", flush=True); sys.exit(2)
        port = int(args[args.index("--port") + 1])
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers()
            def log_message(self, *a): pass
        time.sleep(3)
        http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """))
    fake.chmod(0o755)
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"(?s)node [ab] exited with 2 before it was ready.*no such model"):
        local.start_servers(run_dir=str(run_dir), nodes=["a", "b"], model_path="/bad-model", engine_args=[],
                            sut_python=str(fake), ready_timeout_s=30)
    assert not (run_dir / "distributed" / "servers.json").exists()

    urls = local.start_servers(run_dir=str(run_dir), nodes=["a", "b"], model_path="/good", engine_args=[],
                               sut_python=str(fake), ready_timeout_s=30)
    assert set(urls) == {"a", "b"} and all(u.startswith("http://127.0.0.1:") for u in urls.values())
    import json
    pgids = [s["pgid"] for s in json.loads((run_dir / "distributed" / "servers.json").read_text()).values()]
    assert all(local.group_alive(p) for p in pgids)
    assert sorted(local.stop_servers(str(run_dir))) == ["a", "b"]
    assert not any(local.group_alive(p) for p in pgids)
    assert local.stop_servers(str(run_dir)) == []        # teardown is idempotent


def test_a_compliance_runs_log_never_overwrites_the_performance_runs_log():
    """A SUT process's console log is named after its tests, beside their folders: a process of TEST06 alone (in
    performance mode) never overwrites the log of one that ran performance first."""
    from include.runners.local import sut_log_path

    base = "/artifacts/r1/single/gpu-a/Offline"
    grouped = sut_log_path({"output_dir": f"{base}/performance", "tests": [
        {"mode": "performance", "compliance_test": None, "output_dir": f"{base}/performance"},
        {"mode": "accuracy", "compliance_test": None, "output_dir": f"{base}/accuracy"},
        {"mode": "performance", "compliance_test": "TEST06", "output_dir": f"{base}/TEST06"}]})
    test06 = sut_log_path({"output_dir": f"{base}/TEST06", "tests": [
        {"mode": "performance", "compliance_test": "TEST06", "output_dir": f"{base}/TEST06"}]})
    assert str(grouped) == f"{base}/performance+accuracy+TEST06.sut.log" and str(test06) == f"{base}/TEST06.sut.log"


# A SUT process of three tests whose first completes and second fails: the engine may be gone, the third never runs.
FAILS_AFTER_ITS_FIRST_TEST = textwrap.dedent("""
    import json, os, sys
    args = sys.argv[1:]
    out = args[args.index("--output-dir") + 1]
    assert not os.listdir(out), "the runner empties every test's folder first"
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"status": "completed"}, f)
    print("error: run failed: accuracy: engine died", flush=True)
    sys.exit(1)
""")


def test_a_failed_process_marks_its_unfinished_tests_failed_and_keeps_the_finished_one(tmp_path):
    from include.results.run_artifacts import RUNNER_EXIT_FILE, read_run

    script = tmp_path / "fake_sut.py"
    script.write_text(FAILS_AFTER_ITS_FIRST_TEST)
    python = tmp_path / "python"          # the SUT interpreter: drops `-m mlperf_sut`, runs the stand-in
    python.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {script} "$@"\n')
    python.chmod(0o755)
    base = tmp_path / "r1" / "single" / "gpu-a" / "Offline"
    tests = [{"mode": "performance", "compliance_test": None, "output_dir": str(base / "performance")},
             {"mode": "accuracy", "compliance_test": None, "output_dir": str(base / "accuracy")},
             {"mode": "performance", "compliance_test": "TEST06", "output_dir": str(base / "TEST06")}]
    for test in tests:                    # a previous try's leftovers
        Path(test["output_dir"]).mkdir(parents=True)
        (Path(test["output_dir"]) / "result.json").write_text('{"status": "completed"}')
    spec = {"name": "single/gpu-a/Offline/performance+accuracy+TEST06", "label": "gpu-a", "nodes": ["gpu-a"],
            "output_dir": str(base / "performance"), "timeout_s": 60, "tests": tests,
            "arguments": ["run", "--output-dir", str(base / "performance"),
                          "--also", f"accuracy={base / 'accuracy'}", "--also", f"TEST06={base / 'TEST06'}"]}
    with pytest.raises(local.SutFailed, match="exit code 1"):
        local.run_spec(spec, str(python))
    assert not (base / "performance" / RUNNER_EXIT_FILE).exists()
    assert read_run(base / "performance", "single").exit_code is None
    for name in ("accuracy", "TEST06"):
        assert not (base / name / "result.json").exists()        # the stale result went with the folder
        record = read_run(base / name, "single")
        assert record.status == "failed" and "exit code 1" in record.error and "no result.json" in record.error
        assert record.log_path == str(base / "performance+accuracy+TEST06.sut.log")
