"""Generation parameters of the benchmark, defined once (MLPerf llama3.1-8b reference: greedy, 128 tokens)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# LoadGen's accuracy log stores the output ids as the raw bytes of this dtype; the evaluation decodes int32.
TOKEN_DTYPE = np.int32
TOKEN_DTYPE_NAME = "int32"


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    """Sampling settings the benchmark fixes; greedy so that a run is reproducible token for token."""

    max_tokens: int = 128
    min_tokens: int = 1
    temperature: float = 0.0
    top_k: int = 1
    seed: int = 42

    def to_dict(self) -> dict:
        return {**asdict(self), "token_dtype": TOKEN_DTYPE_NAME}

    def sampling_params(self, *, streaming: bool):
        """vLLM SamplingParams, ids only: LoadGen wants ids, and a model dir may lack a tokenizer to detokenise."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            max_tokens=self.max_tokens,
            min_tokens=self.min_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            seed=self.seed,
            detokenize=False,
            output_kind=RequestOutputKind.DELTA if streaming else RequestOutputKind.FINAL_ONLY,
        )


BENCHMARK_GENERATION = GenerationConfig()
