"""vLLM engine options from the command line, shared by the offline and streaming backends."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mlperf_sut.errors import InputError

# Any of these makes a directory's tokenizer loadable; without one the engine runs on token ids alone.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Engine arguments; None leaves vLLM's default, which result.json records as the engine reports it."""

    model: Path
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    load_format: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    skip_tokenizer_init: bool = False

    @classmethod
    def for_model(cls, model: Path, skip_tokenizer_init: bool = False, **options) -> EngineOptions:
        """Check the model directory; a directory with only config.json runs without a tokenizer (token-id prompts)."""
        if not (model / "config.json").is_file():
            raise InputError(f"--model {model}: no config.json there (a Hugging Face model directory is needed; "
                             "python -m mlperf_sut build-tiny-model --output DIR builds a small one)")
        has_tokenizer = any((model / name).is_file() for name in TOKENIZER_FILES)
        return cls(model=model, skip_tokenizer_init=skip_tokenizer_init or not has_tokenizer, **options)

    @property
    def dummy_weights(self) -> bool:
        """Random weights: performance is real, accuracy is not."""
        return self.load_format == "dummy"

    def vllm_kwargs(self) -> dict:
        kwargs = {k: v for k, v in asdict(self).items() if v is not None}
        kwargs["model"] = str(self.model)
        return kwargs


def effective_engine(vllm_config, options: EngineOptions) -> dict:
    """The engine arguments in effect, read back from vLLM's resolved config (defaults filled in)."""
    model_config, cache_config = vllm_config.model_config, vllm_config.cache_config
    return {
        "dtype": str(model_config.dtype).removeprefix("torch."),
        "tensor_parallel_size": vllm_config.parallel_config.tensor_parallel_size,
        "max_num_seqs": vllm_config.scheduler_config.max_num_seqs,
        "max_num_batched_tokens": vllm_config.scheduler_config.max_num_batched_tokens,
        "gpu_memory_utilization": cache_config.gpu_memory_utilization,
        "max_model_len": model_config.max_model_len,
        "load_format": options.load_format,
        "quantization": model_config.quantization,
        "kv_cache_dtype": cache_config.cache_dtype,
        "skip_tokenizer_init": options.skip_tokenizer_init,
    }
