"""Offline scenario in-process: the whole query through one `LLM.generate` call, vLLM's highest-throughput path."""
from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Sequence

from tqdm import tqdm

from mlperf_sut.backends.base import Backend, Query, Reporter
from mlperf_sut.engine import EngineOptions, effective_engine
from mlperf_sut.generation import GenerationConfig

_STOP = None
WORKER_STOP_S = 2.0


class VllmOfflineBackend(Backend):
    """Generates on one worker thread so LoadGen's issue call returns at once; LLM is not thread-safe, hence one."""

    name = "vllm"

    def __init__(self, options: EngineOptions, generation: GenerationConfig, llm=None) -> None:
        """`llm`: an already started vllm.LLM (the overhead benchmark compares raw and harness on one engine)."""
        self._options = options
        self._params = generation.sampling_params(streaming=False)
        self._llm = llm
        self._owns_llm = llm is None
        self._batches: queue.Queue[list[Query] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._reporter: Reporter | None = None

    def start(self, reporter: Reporter) -> None:
        from vllm import LLM

        self._reporter = reporter
        if self._llm is None:
            self._llm = LLM(**self._options.vllm_kwargs())
        if self._worker is None:  # a later start only swaps the reporter: one worker per LLM, which is not thread-safe
            self._worker = threading.Thread(target=self._work, name="vllm-offline", daemon=True)
            self._worker.start()

    def submit(self, queries: Sequence[Query]) -> None:
        self._batches.put(list(queries))

    def _work(self) -> None:
        from vllm.inputs import TokensPrompt

        while (batch := self._batches.get()) is not _STOP:
            try:
                prompts = [TokensPrompt(prompt_token_ids=list(q.prompt_token_ids)) for q in batch]
                counter = functools.partial(_CompletionCounter, on_update=self._reporter.generated)
                outputs = self._llm.generate(prompts, self._params, use_tqdm=counter)
                for query, output in zip(batch, outputs, strict=True):
                    self._reporter.complete(query, output.outputs[0].token_ids)
            except Exception as error:  # noqa: BLE001 - any engine failure ends the run, reported to the harness
                self._reporter.fail(error)

    def stop(self) -> None:
        """The engine first, then the worker: a stop on SIGTERM comes while the worker may be in LLM.generate, which
        would otherwise run its whole batch (minutes) first, and may never return once the engine is gone (measured:
        still waiting for outputs 5 s after the engine stopped). An idle worker ends at once; a stuck one is left
        (a daemon thread: it ends with the process)."""
        if self._owns_llm and self._llm is not None:
            shutdown_llm(self._llm)
        if self._worker is not None:
            self._batches.put(_STOP)
            self._worker.join(WORKER_STOP_S)
            self._worker = None
        if self._owns_llm:
            self._llm = None

    def engine_info(self) -> dict:
        return effective_engine(self._llm.llm_engine.vllm_config, self._options) if self._llm is not None else {}


def shutdown_llm(llm) -> None:
    """Stop the engine-core process now (LLM has no shutdown of its own; waiting for garbage collection can leave
    it running at interpreter exit)."""
    llm.llm_engine.engine_core.shutdown()


class _CompletionCounter(tqdm):
    """LLM.generate's progress bar, silenced, forwarding each finished request count to the harness."""

    def __init__(self, *args, on_update: Callable[[int], None], **kwargs) -> None:
        self._on_update = on_update
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
        super().__init__(*args, file=self._devnull, mininterval=3600, **kwargs)

    def update(self, n: float | None = 1) -> bool | None:
        self._on_update(int(n or 0))
        return super().update(n)

    def close(self) -> None:
        super().close()
        self._devnull.close()
