"""vLLM engine options from the command line, shared by the offline and streaming backends."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
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
    enforce_eager: bool = False
    # Off unless asked: LoadGen issues each sample several times (a 600 s Offline run, every Server run past 13,368
    # queries), and a prompt seen before would skip its prefill. Measured on an H200 on 2026-11-29: 21,102 output
    # tokens/s with it on against 7,395 off, for the same prompts.
    enable_prefix_caching: bool = False
    # Further vLLM engine arguments by name (async_scheduling, compilation_config, ...): tuning without a flag each.
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: Path, skip_tokenizer_init: bool = False, **options) -> EngineOptions:
        """Check the model directory; a directory with only config.json runs without a tokenizer (token-id prompts)."""
        if not (model / "config.json").is_file():
            raise InputError(f"--model {model}: no config.json there (a Hugging Face model directory is needed; "
                             "python -m mlperf_sut build-tiny-model --output DIR builds a small one)")
        try:
            json.loads((model / "config.json").read_bytes())
        except (OSError, ValueError) as error:
            raise InputError(f"--model {model}: config.json cannot be read as JSON "
                             f"({getattr(error, 'strerror', None) or error})") from None
        has_tokenizer = any((model / name).is_file() for name in TOKENIZER_FILES)
        return cls(model=model, skip_tokenizer_init=skip_tokenizer_init or not has_tokenizer, **options)

    @property
    def dummy_weights(self) -> bool:
        """Random weights: performance is real, accuracy is not."""
        return self.load_format == "dummy"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EngineOptions:
        """From the flags of `add_engine_arguments` (shared by `run` and `serve`)."""
        return cls.for_model(args.model, skip_tokenizer_init=args.skip_tokenizer_init, **requested_options(args))

    def vllm_kwargs(self) -> dict:
        kwargs = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        kwargs["model"] = str(self.model)
        return {**kwargs, **self.extra}


def add_engine_arguments(parser) -> None:
    """The vLLM engine flags of `run` and `serve` (a parser or an argument group); names are EngineOptions' fields."""
    parser.add_argument("--dtype", default="auto", help="weights/activations dtype, e.g. bfloat16 (default auto)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per engine (default 1)")
    parser.add_argument("--max-num-seqs", type=int, help="most sequences in one batch (default: vLLM's)")
    parser.add_argument("--max-num-batched-tokens", type=int, help="token budget of one scheduler step")
    parser.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may take")
    parser.add_argument("--max-model-len", type=int, help="longest prompt plus output in tokens")
    parser.add_argument("--load-format", default="auto",
                        help="'dummy': random weights from config.json, for pure performance runs")
    parser.add_argument("--quantization", help="e.g. fp8 (weights quantised at load on GPU)")
    parser.add_argument("--kv-cache-dtype", default="auto", help="e.g. fp8 for an FP8 KV cache")
    parser.add_argument("--skip-tokenizer-init", action="store_true",
                        help="do not load a tokenizer (automatic when the model directory has none)")
    parser.add_argument("--enforce-eager", action="store_true",
                        help="no torch.compile / CUDA graphs: starts much faster, runs slower (CPU smoke runs)")
    parser.add_argument("--enable-prefix-caching", action="store_true",
                        help="reuse the KV cache of prompts seen before: LoadGen repeats samples, so throughput is "
                             "overstated (off by default)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=JSON",
                        help="any other vLLM engine argument, value as JSON, e.g. async_scheduling=true; repeatable")


def requested_options(args: argparse.Namespace) -> dict:
    """EngineOptions' fields as the flags of `add_engine_arguments` give them (the model and tokenizer aside)."""
    return {"dtype": args.dtype, "tensor_parallel_size": args.tensor_parallel_size, "max_num_seqs": args.max_num_seqs,
            "max_num_batched_tokens": args.max_num_batched_tokens,
            "gpu_memory_utilization": args.gpu_memory_utilization, "max_model_len": args.max_model_len,
            "load_format": args.load_format, "quantization": args.quantization, "kv_cache_dtype": args.kv_cache_dtype,
            "enforce_eager": args.enforce_eager, "enable_prefix_caching": args.enable_prefix_caching,
            "extra": dict(parse_engine_arg(text) for text in args.engine_arg)}


def requested_engine(args: argparse.Namespace) -> dict:
    """The engine flags as given, `--engine-arg`s merged in: what result.json records before an engine resolves them
    (and what a `serve`d server's card reports)."""
    options = requested_options(args)
    return {**{key: value for key, value in options.items() if key != "extra"}, **options["extra"]}


def parse_engine_arg(text: str) -> tuple[str, object]:
    """`KEY=JSON` -> (key, value); a bare word that is not JSON is taken as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise InputError(f"--engine-arg {text!r}: expected KEY=VALUE with a vLLM engine argument name, "
                         "e.g. async_scheduling=true")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


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
        "enforce_eager": model_config.enforce_eager,
        "enable_prefix_caching": bool(cache_config.enable_prefix_caching),
        **{key: value for key, value in options.extra.items()},
    }
