"""Server, Interactive and SingleStream in-process: vLLM's streaming AsyncLLM on one long-lived event loop.

LoadGen issues queries from its own threads; each query becomes a coroutine scheduled onto the loop thread with
run_coroutine_threadsafe, so issuing never waits for generation and every request shares one engine and one loop
(the reference SUT's asyncio.run per query serialises requests and kills the engine).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from mlperf_sut.backends.base import Backend, Query, Reporter
from mlperf_sut.engine import EngineOptions, effective_engine
from mlperf_sut.generation import GenerationConfig


class VllmAsyncBackend(Backend):
    name = "vllm"

    def __init__(self, options: EngineOptions, generation: GenerationConfig) -> None:
        self._options = options
        self._params = generation.sampling_params(streaming=True)
        self._engine = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-async-loop", daemon=True)
        self._reporter: Reporter | None = None

    @property
    def engine(self):
        """The AsyncLLM (for the overhead benchmark's raw baseline on the same engine)."""
        return self._engine

    def start(self, reporter: Reporter) -> None:
        """Idempotent: a second start only swaps the reporter, so one engine can serve several LoadGen tests."""
        self._reporter = reporter
        if not self._thread.is_alive():
            self._thread.start()
        if self._engine is None:
            self.run(self._create_engine())

    def run(self, coroutine):
        """Run `coroutine` on the backend's loop and wait for its result (engine creation, benchmarks)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _create_engine(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self._options.vllm_kwargs()))

    def submit(self, queries: Sequence[Query]) -> None:
        for query in queries:
            asyncio.run_coroutine_threadsafe(self._generate(query), self._loop)

    async def _generate(self, query: Query) -> None:
        from vllm.inputs import TokensPrompt

        try:
            tokens: list[int] = []
            prompt = TokensPrompt(prompt_token_ids=list(query.prompt_token_ids))
            async for output in self._engine.generate(prompt, self._params, request_id=str(query.response_id)):
                delta = output.outputs[0].token_ids
                if delta and not tokens:
                    self._reporter.first_token(query, delta[0])
                tokens.extend(delta)
                if output.finished:
                    self._reporter.complete(query, tokens)
        except Exception as error:  # noqa: BLE001 - any engine failure ends the run, reported to the harness
            self._reporter.fail(error)

    def stop(self) -> None:
        if self._engine is not None:
            if self._thread.is_alive():
                self.run(self._shutdown_engine())
            else:
                self._engine.shutdown()
            self._engine = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    async def _shutdown_engine(self) -> None:
        """AsyncLLM.shutdown, in the order its tasks expect, on the loop that runs them.

        AsyncLLM.shutdown stops the engine-core process first and only then asks (thread-safely) for its output
        handler to be cancelled. Called from another thread and followed at once by stopping the loop, the handler
        first reads from the dead core (EngineDeadError, logged as "AsyncLLM output_handler failed." with a
        traceback) and the cancellations of it and of the client's output-socket task are never run ("Task was
        destroyed but it is pending!" at exit). So: cancel the handler and wait for it, shut the engine down on
        this loop (its socket task is cancelled here, at once), then wait for every task left on the loop.
        """
        handler = getattr(self._engine, "output_handler", None)
        if handler is not None and not handler.done():
            handler.cancel()
            await asyncio.gather(handler, return_exceptions=True)
        self._engine.shutdown()
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def engine_info(self) -> dict:
        return effective_engine(self._engine.vllm_config, self._options) if self._engine is not None else {}
