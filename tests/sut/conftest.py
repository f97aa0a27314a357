"""Fixtures for the SUT tests: the tiny model and data set (the Makefile's, or built into tmp) and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUT_SRC = REPO / "sut_image"
if str(SUT_SRC) not in sys.path:  # the package is installed editable in .venv-sut; this also covers a bare checkout
    sys.path.insert(0, str(SUT_SRC))

TINY_MODEL = REPO / ".cache" / "tiny-llama"
TINY_DATASET = REPO / ".cache" / "tiny-cnn" / "cnn_eval.json"


def sut_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUT_SRC), env.get("PYTHONPATH")]))
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return env


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlperf_sut", *map(str, args)], env=sut_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    if (TINY_MODEL / "config.json").is_file():
        return TINY_MODEL
    from mlperf_sut.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_dataset(tiny_model, tmp_path_factory) -> Path:
    if TINY_DATASET.is_file():
        return TINY_DATASET
    from mlperf_sut.dataset import build_text_dataset

    return build_text_dataset(tiny_model, 64, tmp_path_factory.mktemp("tiny-cnn") / "cnn_eval.json")
