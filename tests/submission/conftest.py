"""A real run folder for the submission tests: the SUT (real vLLM on the CPU, tiny model, LoadGen) runs Offline in
performance and accuracy mode and the TEST06 compliance test, in the pipeline's layout; the pipeline scores it.

Slow (three engine starts, ~1-2 min): made once per session. Needs the SUT venv and `make tiny`.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.dags import conftest as dag_fixtures

# The DAG tests' deployment environment and DAG, for the tests of the compliance_tests param.
deploy_env, dagbag, dag = dag_fixtures.deploy_env, dag_fixtures.dagbag, dag_fixtures.dag

REPO = Path(__file__).resolve().parents[2]
SUT_PYTHON = REPO / ".venv-sut/bin/python"
TINY = REPO / ".cache/tiny-llama"
DATASET = REPO / ".cache/tiny-cnn/cnn_eval.json"
NODE = "local-0"
SAMPLES = 16


def _sut(out: Path, mode: str, *extra: str) -> None:
    cmd = [str(SUT_PYTHON), "-m", "mlperf_sut", "run", "--scenario", "Offline", "--mode", mode, "--model", str(TINY),
           "--dataset", str(DATASET), "--output-dir", str(out), "--total-sample-count", str(SAMPLES), "--node", NODE,
           "--enforce-eager", "--progress-interval", "0", "--override", "min_duration=0",
           "--override", f"min_query_count={SAMPLES}", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")})
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    """<run>/single/local-0/Offline/{performance,accuracy,TEST06}/, accuracy scored (accuracy.txt written)."""
    if not (SUT_PYTHON.exists() and (TINY / "config.json").exists()) and not os.environ.get("CI"):
        pytest.skip("needs the SUT venv and `make tiny`")
    run = tmp_path_factory.mktemp("run") / "manual__2026-11-29T02_00_00_00_00"
    scenario = run / "single" / NODE / "Offline"
    _sut(scenario / "performance", "performance")
    _sut(scenario / "accuracy", "accuracy")
    _sut(scenario / "TEST06", "performance", "--compliance-test", "TEST06")
    from include import pipeline

    pipeline.score(pipeline.parse_folder(run), str(TINY), str(DATASET))
    return run
