"""Backends: in-process vLLM (offline batch or streaming) and, in production's distributed runs, HTTP endpoints.

Each is imported only when chosen, so a missing optional dependency of one never breaks another.
"""
from __future__ import annotations

from mlperf_sut.backends.base import Backend
from mlperf_sut.engine import EngineOptions
from mlperf_sut.generation import GenerationConfig
from mlperf_sut.settings import Scenario


def create_vllm_backend(scenario: Scenario, options: EngineOptions, generation: GenerationConfig) -> Backend:
    """Offline batches through LLM.generate; the latency scenarios stream through AsyncLLM."""
    if scenario.streaming:
        from mlperf_sut.backends.vllm_async import VllmAsyncBackend

        return VllmAsyncBackend(options, generation)
    from mlperf_sut.backends.vllm_offline import VllmOfflineBackend

    return VllmOfflineBackend(options, generation)
