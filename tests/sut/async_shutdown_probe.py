"""Start the streaming backend (vLLM's AsyncLLM) on the tiny model, answer two queries, stop it; print what is left
on its event loop as JSON. Run as a script: vLLM's engine process re-imports the main module."""
import asyncio
import json
import sys
import threading
from pathlib import Path


def main(model: str, dataset: str) -> None:
    from mlperf_sut.backends.base import Query
    from mlperf_sut.backends.vllm_async import VllmAsyncBackend
    from mlperf_sut.engine import EngineOptions
    from mlperf_sut.generation import BENCHMARK_GENERATION

    prompts = [tuple(r["tok_input"]) for r in json.loads(Path(dataset).read_text())[:2]]
    done, errors = threading.Semaphore(0), []

    class Reporter:
        def first_token(self, query, token_id): pass
        def generated(self, count): pass
        def complete(self, query, token_ids, endpoint=None): done.release()
        def fail(self, error): errors.append(repr(error)); done.release()

    backend = VllmAsyncBackend(EngineOptions.for_model(Path(model), enforce_eager=True, max_num_seqs=2),
                               BENCHMARK_GENERATION)
    backend.start(Reporter())
    loop, handler = backend._loop, backend.engine.output_handler
    backend.submit([Query(i, i, p) for i, p in enumerate(prompts)])
    for _ in prompts:
        assert done.acquire(timeout=600), "no answer in 600 s"
    backend.stop()
    left = [f"{t.get_name()}: {t.get_coro()}" for t in asyncio.all_tasks(loop) if not t.done()]
    print("SHUTDOWN " + json.dumps({"errors": errors, "pending": left, "loop_closed": loop.is_closed(),
                                    "handler_cancelled": handler is not None and handler.cancelled()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
