"""Harness overhead on the tiny model: the same prompts through raw vLLM and through the SUT, in one process.

Offline: output tokens/s of the SUT's Offline path (LoadGen + harness + LLM.generate) over raw LLM.generate on the
same engine (goal >= 0.95). Server: p50 time to first token of the SUT's Server path (LoadGen's figure) minus
that of raw AsyncLLM streaming at the same Poisson load on the same engine (goal <= 5 ms).
Prints `harness_overhead_ratio=... server_ttft_overhead_ms=...` as its last line.

    VLLM_CPU_KVCACHE_SPACE=1 .venv-sut/bin/python benchmarks/harness_overhead.py \
        --model .cache/tiny-llama --dataset .cache/tiny-cnn/cnn_eval.json
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sut_image"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path(".cache/tiny-llama"))
    parser.add_argument("--dataset", type=Path, default=Path(".cache/tiny-cnn/cnn_eval.json"))
    parser.add_argument("--samples", type=int, default=64, help="prompts per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved measurement pairs (the median is reported)")
    parser.add_argument("--server-qps", type=float, default=8.0, help="Poisson arrival rate for the Server comparison")
    args = parser.parse_args()

    from mlperf_sut.engine import EngineOptions
    from mlperf_sut.qsl import QuerySampleLibrary

    qsl = QuerySampleLibrary.load(args.dataset, args.samples)
    options = EngineOptions.for_model(args.model)
    with tempfile.TemporaryDirectory() as work:
        ratio = offline(qsl, options, args.repeats, Path(work))
        ttft_overhead_ms = server(qsl, options, args.repeats, args.server_qps, Path(work))
    print(f"harness_overhead_ratio={ratio:.3f} server_ttft_overhead_ms={ttft_overhead_ms:.2f}", flush=True)


def offline(qsl, options, repeats: int, work: Path) -> float:
    from vllm import LLM
    from vllm.inputs import TokensPrompt

    from mlperf_sut.backends.vllm_offline import VllmOfflineBackend, shutdown_llm
    from mlperf_sut.generation import BENCHMARK_GENERATION
    from mlperf_sut.settings import Scenario

    llm = LLM(**options.vllm_kwargs())
    params = BENCHMARK_GENERATION.sampling_params(streaming=False)
    prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in qsl.prompts]

    def raw() -> float:
        start = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        elapsed = time.perf_counter() - start
        return sum(len(o.outputs[0].token_ids) for o in outputs) / elapsed

    def sut() -> float:
        outcome, _ = _loadgen_run(qsl, VllmOfflineBackend(options, BENCHMARK_GENERATION, llm=llm), Scenario.OFFLINE,
                                  [f"min_query_count={len(qsl)}"], work)
        return outcome.output_tokens / outcome.duration_s

    raw()  # warm-up
    raw_rates, sut_rates = [], []
    for _ in range(repeats):  # interleaved, so drifting machine load hits both alike
        raw_rates.append(raw())
        sut_rates.append(sut())
    shutdown_llm(llm)
    # On a shared machine the load drifts between measurements: compare each SUT run with the raw run next to it.
    ratio = statistics.median(s / r for s, r in zip(sut_rates, raw_rates))
    print(f"offline: output tokens/s raw LLM.generate {[round(r) for r in raw_rates]}, SUT Offline "
          f"{[round(r) for r in sut_rates]}; median of pairwise ratios {ratio:.3f}", flush=True)
    return ratio


def server(qsl, options, repeats: int, qps: float, work: Path) -> float:
    import numpy as np
    from vllm.inputs import TokensPrompt

    from mlperf_sut.backends.vllm_async import VllmAsyncBackend
    from mlperf_sut.generation import BENCHMARK_GENERATION
    from mlperf_sut.settings import Scenario

    backend = VllmAsyncBackend(options, BENCHMARK_GENERATION)
    backend.start(reporter=None)  # creates the engine on the backend's loop; each LoadGen run swaps the reporter
    engine = backend.engine
    params = BENCHMARK_GENERATION.sampling_params(streaming=True)

    async def raw_ttfts(seed: int) -> list[float]:
        arrivals = np.cumsum(np.random.default_rng(seed).exponential(1 / qps, len(qsl)))
        origin = time.perf_counter()

        async def one(index: int) -> float:
            await asyncio.sleep(max(0.0, origin + arrivals[index] - time.perf_counter()))
            issued = time.perf_counter()
            first = None
            async for output in engine.generate(TokensPrompt(prompt_token_ids=list(qsl.prompts[index])), params,
                                                request_id=f"raw-{seed}-{index}"):
                if first is None and output.outputs[0].token_ids:
                    first = time.perf_counter() - issued
            return first

        return await asyncio.gather(*(one(i) for i in range(len(qsl))))

    def sut_ttft_ms() -> float:
        _, out = _loadgen_run(qsl, backend, Scenario.SERVER, [f"target_qps={qps}", f"min_query_count={len(qsl)}"],
                              work, stop=False)
        summary = (out / "mlperf_log_summary.txt").read_text()
        line = next(l for l in summary.splitlines() if l.startswith("50.00 percentile first token latency (ns)"))
        return int(line.split(":")[1]) / 1e6

    backend.run(raw_ttfts(0))  # warm-up
    raw_p50, sut_p50 = [], []
    for repeat in range(repeats):
        raw_p50.append(statistics.median(backend.run(raw_ttfts(repeat + 1))) * 1e3)
        sut_p50.append(sut_ttft_ms())
    backend.stop()
    overhead = statistics.median(s - r for s, r in zip(sut_p50, raw_p50))
    print(f"server at {qps} queries/s: p50 TTFT ms raw AsyncLLM {[round(r, 2) for r in raw_p50]}, SUT Server "
          f"{[round(r, 2) for r in sut_p50]}; median of pairwise differences {overhead:.2f} ms", flush=True)
    return overhead


def _loadgen_run(qsl, backend, scenario, overrides: list[str], work: Path, stop: bool = True):
    from mlperf_sut.harness import Harness
    from mlperf_sut.progress import Progress
    from mlperf_sut.settings import Mode, Override, build_settings, default_user_conf

    out = Path(tempfile.mkdtemp(dir=work))
    settings = build_settings(scenario, Mode.PERFORMANCE, default_user_conf(),
                              [Override.parse(o) for o in ["min_duration=0", *overrides]], len(qsl), out / "user.conf")
    harness = Harness(qsl, backend, Progress(0))
    backend.start(harness)
    try:
        return harness.run(settings.test_settings, out), out
    finally:
        if stop:
            backend.stop()


if __name__ == "__main__":
    main()
