"""The streaming backend stops vLLM's AsyncLLM in the order it expects: no EngineDeadError traceback from its
output handler and no "Task was destroyed but it is pending!" at the end of a normal run (seen after every GPU run
before the fix: reference/h200/session-3.log)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, sut_env

pytestmark = pytest.mark.slow


def test_async_engine_stops_with_nothing_left_on_its_loop(tiny_model, tiny_dataset):
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("async_shutdown_probe.py")), str(tiny_model),
                           str(tiny_dataset)], env=sut_env(), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("SHUTDOWN "))
    state = json.loads(line.removeprefix("SHUTDOWN "))
    assert state == {"errors": [], "pending": [], "loop_closed": True, "handler_cancelled": True}, state
    output = done.stdout + done.stderr
    for noise in ("Traceback", "Task was destroyed but it is pending", "output_handler failed", "EngineDeadError"):
        assert noise not in output, f"{noise!r} in the output:\n{output[-4000:]}"
