"""vLLM engine settings as DAG params: presets, further engine arguments, and the SUT flags they become.

Two files the SUT ships define what may be asked for (the SUT checks its flags against the same files, exit 2):
* `engine_args.schema.json`: every vLLM engine argument of the pinned vLLM with its JSON type, generated from
  vLLM's `EngineArgs` (`python -m mlperf_sut engine-args-schema`); which of them the SUT sets through a flag of its
  own (`x-flags`: here a param each), which it refuses (`x-refused`: prefix caching, with the reason), and the
  values of `quantization` and `kv_cache_dtype`.
* `engine_presets.json`: named engine settings measured on a GPU (e.g. `h200-fp8`), with the LoadGen rates they
  were measured at.

Resolution, per node: the engine's defaults < the preset's values < params given explicitly. A param "given
explicitly" is one whose value differs from its default in the trigger form, or any key of the node's
`node_overrides`. The SUT receives `--engine-preset NAME` plus the explicit values as flags, resolves them itself
and records the preset and its overrides in result.json.
"""
from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

# The engine params with a SUT flag of their own (EngineOptions' fields), in the order the flags are written.
FLAG_PARAMS = ("dtype", "tensor_parallel_size", "max_num_seqs", "max_num_batched_tokens", "quantization",
               "kv_cache_dtype", "enforce_eager")
# What node_overrides may set for one node, beside model_path (tensor_parallel_size is the pod's GPU count: the
# same for every node).
NODE_ENGINE_KEYS = ("engine_preset", "dtype", "max_num_seqs", "max_num_batched_tokens", "quantization",
                    "kv_cache_dtype", "enforce_eager", "load_format", "engine_args")
# The GPUs a pod or process is given: passed always, never left to a preset.
ALWAYS_PASSED = ("tensor_parallel_size",)
LOAD_FORMATS = ("auto", "dummy")
RATE_KEYS = ("offline_target_qps", "server_target_qps")


class EngineSettingsError(ValueError):
    """An engine param that the SUT would refuse; the message starts with the param's name."""


def _sut_file(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{name} not found at {path}: it ships with the SUT; mount or copy "
                                "sut_image/mlperf_sut/ there") from None


@functools.cache
def engine_args_schema(folder: Path) -> dict[str, Any]:
    return _sut_file(folder, "engine_args.schema.json")


@functools.cache
def presets(folder: Path) -> dict[str, dict[str, Any]]:
    return _sut_file(folder, "engine_presets.json")["presets"]


def flag_args(folder: Path) -> dict[str, str]:
    """Engine arguments the SUT sets through a flag of its own but the DAG has no param for (max_model_len,
    gpu_memory_utilization): `engine_args` takes them, and they reach the SUT as that flag."""
    own = {*FLAG_PARAMS, "load_format", "model", "skip_tokenizer_init"}
    return {key: flag for key, flag in engine_args_schema(folder).get("x-flags", {}).items() if key not in own}


def free_args(folder: Path) -> dict[str, dict[str, Any]]:
    """The engine arguments `engine_args` accepts: vLLM's, less those with a param of their own and those refused."""
    schema = engine_args_schema(folder)
    taken = (set(schema.get("x-flags", {})) - set(flag_args(folder))) | set(schema.get("x-refused", {}))
    return {key: spec for key, spec in schema["properties"].items() if key not in taken}


def choices(folder: Path, key: str) -> list[str]:
    """The values vLLM accepts for quantization or kv_cache_dtype (the schema's x-quantization / x-kv-cache-dtype)."""
    return list(engine_args_schema(folder)[f"x-{key.replace('_', '-')}"])


def check_engine_args(param: str, given: Any, folder: Path) -> None:
    """Keys of an `engine_args` object: a vLLM engine argument, not one with its own param, not refused; the
    message names the nearest valid key. (Types are checked by the param's JSON schema.)"""
    if not isinstance(given, dict):
        return
    schema = engine_args_schema(folder)
    valid = free_args(folder)
    for key in given:
        shown = str(key)[:60]
        if key in schema.get("x-refused", {}):
            raise EngineSettingsError(f"{param}: {shown!r} is refused: {schema['x-refused'][key]}")
        if key in schema.get("x-flags", {}) and key not in valid:
            raise EngineSettingsError(f"{param}: {shown!r} has its own setting: use the param {key!r}")
        if key not in valid:
            match = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.6)
            raise EngineSettingsError(
                f"{param}: {shown!r} is not a vLLM {schema.get('x-vllm-version', '')} engine argument"
                + (f"; did you mean {match[0]!r}?" if match else " (engine_args.schema.json lists them)"))


def preset_rates(folder: Path, name: str | None) -> dict[str, float]:
    """The LoadGen rates a preset was measured at ({} without a preset)."""
    return {k: v for k, v in presets(folder)[name].get("loadgen", {}).items() if k in RATE_KEYS} if name else {}


def sut_flags(values: dict[str, Any], explicit: set[str], folder: Path) -> list[str]:
    """The SUT's engine flags for one node's resolved params.

    With a preset, a flag param is passed only when given explicitly (otherwise the preset's value holds); without
    one, every flag param that has a value is passed, as before presets existed."""
    preset = values.get("engine_preset")
    flags = ["--engine-preset", preset] if preset else []
    for key in FLAG_PARAMS:
        value = values.get(key)
        if value is None or (preset and key not in explicit and key not in ALWAYS_PASSED):
            continue
        if isinstance(value, bool):
            flags += [f"--{key.replace('_', '-')}"] if value else []
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    if values.get("load_format", "auto") != "auto":
        flags += ["--load-format", values["load_format"]]
    own_flag = flag_args(folder)
    for key, value in sorted((values.get("engine_args") or {}).items()):
        if key in own_flag:
            flags += [own_flag[key], str(value)]
        else:
            flags += ["--engine-arg", f"{key}={json.dumps(value, separators=(',', ':'), sort_keys=True)}"]
    return flags


def node_values(params: dict[str, Any], defaults: dict[str, Any], node: str | None) -> tuple[dict[str, Any], set[str]]:
    """One node's engine params (node_overrides over the common ones) and which of them were given explicitly."""
    own = dict((params.get("node_overrides") or {}).get(node, {})) if node else {}
    own.pop("model_path", None)
    values = {key: params.get(key) for key in ("engine_preset", *FLAG_PARAMS, "load_format", "engine_args")}
    explicit = {key for key, value in values.items() if key in defaults and value != defaults[key]}
    if "engine_args" in own:        # a node's engine arguments add to (and replace keys of) the common ones
        own["engine_args"] = {**(values.get("engine_args") or {}), **own["engine_args"]}
    values.update(own)
    return values, explicit | set(own)
