"""Session fixtures shared by the pipeline tests: the published MLPerf logs, the tiny model and data set, and real
LoadGen runs of the SUT on them.

Nothing here skips: in CI a missing input is a broken build, so each fixture fails with the command that makes it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# CI checks shared/ out beside the clone.
PUBLISHED_FIXTURES = REPO.parent / "shared" / "fixtures" / "mlperf-v5.1-redhat-xe8640-h100-vllm"
TINY_MODEL = REPO / ".cache" / "tiny-llama"
TINY_DATASET = REPO / ".cache" / "tiny-cnn" / "cnn_eval.json"
SUT_SAMPLES = 16
# (scenario, mode) -> extra arguments; the Server rate is one the tiny model on one CPU core keeps up with.
SUT_RUNS = {
    ("Offline", "performance"): [],
    ("Offline", "accuracy"): [],
    ("Server", "performance"): ["--override", "target_qps=4"],
}
SUT_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def published_fixtures() -> Path:
    """The published MLPerf v5.1 llama3.1-8b logs (Red Hat, XE8640 H100, vLLM); see shared/fixtures/README.md."""
    if not PUBLISHED_FIXTURES.is_dir():
        pytest.fail(f"published LoadGen fixtures not found at {PUBLISHED_FIXTURES}: check out shared/ beside the"
                    " repository")
    return PUBLISHED_FIXTURES


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    if not (TINY_MODEL / "config.json").is_file():
        pytest.fail(f"tiny model missing at {TINY_MODEL}: run `make tiny`")
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_dataset() -> Path:
    if not TINY_DATASET.is_file():
        pytest.fail(f"tiny data set missing at {TINY_DATASET}: run `make tiny`")
    return TINY_DATASET


def _sut_python() -> Path:
    python = Path(os.environ.get("MLPERF_SUT_PYTHON") or REPO / ".venv-sut" / "bin" / "python")
    if not python.exists():
        pytest.fail(f"SUT interpreter {python} missing: run `make venvs` (or set MLPERF_SUT_PYTHON)")
    return python


@pytest.fixture(scope="session")
def sut_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path,
             tiny_dataset: Path) -> dict[tuple[str, str], Path]:
    """Real LoadGen runs of the SUT (vLLM on the CPU, tiny model, 16 samples), one output directory each.

    Run one after another: vLLM pins its engine to one core and the CI machine has two.
    """
    python = _sut_python()
    root = tmp_path_factory.mktemp("sut_runs")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    runs = {}
    for (scenario, mode), extra in SUT_RUNS.items():
        output_dir = root / f"{scenario}-{mode}"
        command = [str(python), "-m", "mlperf_sut", "run", "--scenario", scenario, "--mode", mode,
                   "--model", str(tiny_model_dir), "--dataset", str(tiny_dataset),
                   "--total-sample-count", str(SUT_SAMPLES), "--output-dir", str(output_dir), "--node", "local-0",
                   "--override", "min_duration=0", "--override", f"min_query_count={SUT_SAMPLES}", *extra]
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=SUT_TIMEOUT_S)
        if done.returncode != 0:
            pytest.fail(f"SUT run {scenario}/{mode} exited {done.returncode}: {' '.join(command)}\n"
                        f"{(done.stdout + done.stderr)[-4000:]}")
        runs[(scenario, mode)] = output_dir
    return runs
