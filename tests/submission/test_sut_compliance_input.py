"""The SUT's --compliance-test is a performance run: asked with another mode it is bad input (exit 2, one line
naming the fix) before any engine starts."""
from __future__ import annotations

import subprocess

import pytest

from tests.submission.conftest import DATASET, SUT_PYTHON, TINY


@pytest.mark.skipif(not SUT_PYTHON.exists(), reason="needs the SUT venv")
def test_a_compliance_test_in_accuracy_mode_is_refused(tmp_path):
    proc = subprocess.run([str(SUT_PYTHON), "-m", "mlperf_sut", "run", "--scenario", "Offline", "--mode", "accuracy",
                           "--compliance-test", "TEST06", "--model", str(TINY), "--dataset", str(DATASET),
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --compliance-test TEST06 is a performance run: give --mode performance")
