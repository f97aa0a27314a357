"""vLLM engine options from the command line, shared by the offline and streaming backends."""
from __future__ import annotations

import argparse
import copy
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from mlperf_sut.engine_args import ENGINE_PRESETS, check_engine_arg, check_value, engine_presets
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
    # Off unless asked by its own flag (explicit experiments): engine_args.REFUSED says why.
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
        return cls.for_model(args.model, skip_tokenizer_init=bool(args.skip_tokenizer_init), **requested_options(args))

    def vllm_kwargs(self) -> dict:
        kwargs = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        kwargs["model"] = str(self.model)
        return {**kwargs, **self.extra}


# EngineOptions' fields a preset may set (engine_presets.json's "engine", beside "engine_args"): not the weights'
# load format (a deployment's choice), nor prefix caching (refused), nor the tokenizer (the model directory's).
PRESET_KEYS = ("dtype", "tensor_parallel_size", "max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization",
               "max_model_len", "quantization", "kv_cache_dtype", "enforce_eager")
# The flags of `add_engine_arguments` that set an EngineOptions field. They default to None in argparse, so a flag
# given on the command line is told from one left out (a preset's value holds unless a flag is given); the real
# defaults are EngineOptions' own.
FLAG_OPTIONS = (*PRESET_KEYS, "load_format", "enable_prefix_caching")
DEFAULTS = {item.name: item.default for item in fields(EngineOptions) if item.default is not MISSING}


def add_engine_arguments(parser) -> None:
    """The vLLM engine flags of `run` and `serve` (a parser or an argument group); names are EngineOptions' fields."""
    presets = sorted(engine_presets()["presets"])
    parser.add_argument("--engine-preset", metavar="NAME", choices=presets,
                        help=f"named engine settings measured on a GPU ({', '.join(presets)}; "
                             f"mlperf_sut/{ENGINE_PRESETS}); flags given explicitly override its values")
    parser.add_argument("--dtype", help="weights/activations dtype, e.g. bfloat16 (default auto)")
    parser.add_argument("--tensor-parallel-size", type=int, help="GPUs per engine (default 1)")
    parser.add_argument("--max-num-seqs", type=int, help="most sequences in one batch (default: vLLM's)")
    parser.add_argument("--max-num-batched-tokens", type=int, help="token budget of one scheduler step")
    parser.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may take")
    parser.add_argument("--max-model-len", type=int, help="longest prompt plus output in tokens")
    parser.add_argument("--load-format", help="'dummy': random weights from config.json, for pure performance runs "
                                              "(default auto)")
    parser.add_argument("--quantization", help="e.g. fp8 (weights quantised at load on GPU)")
    parser.add_argument("--kv-cache-dtype", help="e.g. fp8 for an FP8 KV cache (default auto)")
    parser.add_argument("--skip-tokenizer-init", action="store_true", default=None,
                        help="do not load a tokenizer (automatic when the model directory has none)")
    parser.add_argument("--enforce-eager", action="store_true", default=None,
                        help="no torch.compile / CUDA graphs: starts much faster, runs slower (CPU smoke runs)")
    parser.add_argument("--enable-prefix-caching", action="store_true", default=None,
                        help="reuse the KV cache of prompts seen before: LoadGen repeats samples, so throughput is "
                             "overstated (off by default; refused through --engine-arg and presets)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=JSON",
                        help="any other vLLM engine argument, value as JSON, e.g. async_scheduling=true; repeatable "
                             "(names and types: mlperf_sut/engine_args.schema.json)")


def sut_flags() -> dict[str, str]:
    """vLLM engine arguments the SUT sets through flags of its own, and the flag (the engine-args schema's x-flags):
    --model and the engine flags; not --enable-prefix-caching, which no other path may set."""
    parser = argparse.ArgumentParser(add_help=False)
    add_engine_arguments(parser)
    return {"model": "--model", **{action.dest: action.option_strings[0] for action in parser._actions
                                   if action.dest not in ("engine_preset", "engine_arg", "enable_prefix_caching")}}


def preset_engine(name: str) -> dict:
    """A preset's "engine", checked like the flags and --engine-arg it stands for (InputError naming the file)."""
    presets = engine_presets()["presets"]
    if name not in presets:
        raise InputError(f"--engine-preset {name}: no such preset (there are {', '.join(sorted(presets))}; "
                         f"mlperf_sut/{ENGINE_PRESETS})")
    engine = presets[name]["engine"]
    where = f"{ENGINE_PRESETS} preset {name!r}"
    for key, value in engine.items():
        if key == "engine_args":
            for arg, arg_value in value.items():
                check_engine_arg(arg, arg_value, f"{where}: engine_args.{arg}")
        elif key in PRESET_KEYS:
            check_value(key, value, f"{where}: engine.{key} {value!r}")
        else:
            raise InputError(f"{where}: engine.{key} is not an engine setting a preset may hold (those are "
                             f"{', '.join(PRESET_KEYS)}, engine_args)")
    return copy.deepcopy(engine)      # the loaded file stays as it is, whatever the engine does with its values


def explicit_options(args: argparse.Namespace) -> dict:
    """The engine flags given on the command line, each checked against the engine-args schema; "extra" holds the
    `--engine-arg`s."""
    given = {}
    for name in FLAG_OPTIONS:
        if (value := getattr(args, name)) is not None:
            check_value(name, value, f"--{name.replace('_', '-')} {value}")
            given[name] = value
    return {**given, "extra": dict(parse_engine_arg(text) for text in args.engine_arg)}


def requested_options(args: argparse.Namespace) -> dict:
    """EngineOptions' fields (the model and tokenizer aside): EngineOptions' defaults, then the --engine-preset's
    values, then the flags given explicitly (an --engine-arg replaces the preset's argument of that name whole)."""
    preset = preset_engine(args.engine_preset) if args.engine_preset else {}
    given = explicit_options(args)
    options = {name: DEFAULTS[name] for name in FLAG_OPTIONS}
    options.update({key: value for key, value in preset.items() if key != "engine_args"})
    options.update({key: value for key, value in given.items() if key != "extra"})
    return {**options, "extra": {**preset.get("engine_args", {}), **given["extra"]}}


def requested_engine(args: argparse.Namespace) -> dict:
    """The engine flags as given, `--engine-arg`s merged in: what result.json records before an engine resolves them
    (and what a `serve`d server's card reports)."""
    options = requested_options(args)
    return {**{key: value for key, value in options.items() if key != "extra"}, **options["extra"]}


def requested_preset(args: argparse.Namespace) -> dict | None:
    """result.json's engine_preset: None without --engine-preset, else its name and the values given explicitly that
    differ from what the preset alone would run with (its values over the defaults; engine arguments by name)."""
    if not args.engine_preset:
        return None
    preset = preset_engine(args.engine_preset)
    alone = {**{name: DEFAULTS[name] for name in PRESET_KEYS}, **preset}
    alone.update(alone.pop("engine_args", {}))
    given = explicit_options(args)
    given = {**{key: value for key, value in given.items() if key in PRESET_KEYS}, **given["extra"]}
    return {"name": args.engine_preset,
            "overrides": {key: value for key, value in given.items() if key not in alone or alone[key] != value}}


def parse_engine_arg(text: str) -> tuple[str, object]:
    """`KEY=JSON` -> (key, value), checked against the engine-args schema; a bare word that is not JSON is taken as a
    string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise InputError(f"--engine-arg {text!r}: expected KEY=VALUE with a vLLM engine argument name, "
                         "e.g. async_scheduling=true")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    check_engine_arg(key, parsed, f"--engine-arg {text}")
    return key, parsed


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
