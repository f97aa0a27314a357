"""vLLM's engine arguments as data: engine_args.schema.json (generated from the installed vLLM) and
engine_presets.json (named settings measured on a GPU).

The SUT checks every engine argument it is given against the schema before any engine starts (a misspelt name or a
wrong type fails in a second with exit 2, not after minutes of engine start-up), and the Airflow side reads the same
two files by path to build the DAG's params: one definition for both. The schema is committed, not computed at each
run: the door must not import vLLM (seconds), and the DAG's side has no vLLM at all. `python -m mlperf_sut
engine-args-schema --output sut_image/mlperf_sut/engine_args.schema.json` rewrites it after a vLLM upgrade; a test
compares the committed file with what the pinned vLLM generates.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import sys
import types
import typing
from importlib import resources

from mlperf_sut.errors import InputError

ENGINE_ARGS_SCHEMA = "engine_args.schema.json"
ENGINE_PRESETS = "engine_presets.json"
# vLLM engine arguments refused on every path but an explicit SUT flag, and why (the schema's x-refused).
REFUSED = {
    "enable_prefix_caching": "LoadGen repeats samples (a 600 s Offline run, Server past 13,368 queries): a cached "
                             "prompt skips its prefill and overstates throughput (measured 21,102 vs 7,395 tokens/s "
                             "on an H200, 2026-11-29)",
    "tokenizer": "set by the SUT: the tokenizer files of --model's directory, or none (prompts are token ids)",
    "served_model_name": "set by the SUT: `serve` serves the model under its directory's basename, the name "
                         "`run --backend http` asks for",
}
# Engine flags that must be whole numbers of at least 1 (vLLM's types say only "int"; 0 failed after the engine
# started, exit 1, as if worth retrying).
AT_LEAST_ONE = ("tensor_parallel_size", "max_num_seqs", "max_num_batched_tokens")


@functools.cache
def engine_args_schema() -> dict:
    """The committed engine_args.schema.json."""
    return json.loads((resources.files("mlperf_sut") / ENGINE_ARGS_SCHEMA).read_text())


@functools.cache
def engine_presets() -> dict:
    """The committed engine_presets.json: {"about": ..., "presets": {name: {"description", "engine", "loadgen"}}}."""
    return json.loads((resources.files("mlperf_sut") / ENGINE_PRESETS).read_text())


def check_engine_arg(key: str, value, where: str) -> None:
    """A vLLM engine argument given by name (--engine-arg, a preset's engine_args): a known name, not one the SUT sets
    through its own flag, not refused, its value of the schema's type; else InputError naming `where`."""
    schema = engine_args_schema()
    if key in schema["x-flags"]:
        raise InputError(f"{where}: set through the SUT's flag {schema['x-flags'][key]}; use that")
    if key in schema["x-refused"]:
        raise InputError(f"{where}: refused: {schema['x-refused'][key]}")
    if key not in schema["properties"]:
        close = difflib.get_close_matches(key, schema["properties"], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"see {ENGINE_ARGS_SCHEMA} for the names"
        raise InputError(f"{where}: not a vLLM engine argument; {hint}")
    check_value(key, value, where)


def check_value(key: str, value, where: str) -> None:
    """`value` against the schema's property `key` (a flag's value too: --quantization, --kv-cache-dtype, --dtype)."""
    import jsonschema       # a dependency of `run` and `serve`, not of --help

    try:
        jsonschema.validate(value, engine_args_schema()["properties"][key])
    except jsonschema.ValidationError as error:
        raise InputError(f"{where}: {error.message} (vLLM {engine_args_schema()['x-vllm-version']}'s {key})") from None
    if key in AT_LEAST_ONE and value is not None and value < 1:
        raise InputError(f"{where}: must be at least 1")


# --- generating the schema from the installed vLLM ---------------------------------------------------------------

JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def build_schema(flags: dict[str, str]) -> dict:
    """engine_args.schema.json from the installed vLLM's EngineArgs (imports vLLM: seconds). `flags`: the engine
    arguments the SUT sets through flags of its own (`engine.sut_flags()`; passed in, since engine imports this
    module)."""
    import vllm
    from vllm.config.cache import CacheDType
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    hints, helps = _type_hints(EngineArgs), _helps(EngineArgs)
    properties = {}
    for item in dataclasses.fields(EngineArgs):
        if not item.name.startswith("_"):          # vLLM's own internals (_api_process_count, ...)
            hint = hints[item.name]
            properties[item.name] = {**type_schema(hint), "description": helps.get(item.name) or _python_type(hint)}
    quantization = list(QUANTIZATION_METHODS)
    properties["quantization"]["enum"] = [*quantization, None]     # vLLM types it str; the list is what it accepts
    properties["quantization"].pop("type", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "vLLM's engine arguments (EngineArgs), generated from the installed vLLM by `python -m "
                       "mlperf_sut engine-args-schema`: what `--engine-arg KEY=JSON`, a preset's engine_args and the "
                       "DAG's engine_args accept. x-flags: set through the SUT's own flags instead; x-refused: never, "
                       "and why. x-python-type: vLLM's type where JSON cannot say it ({} accepts any JSON).",
        "type": "object",
        "additionalProperties": False,
        "x-vllm-version": vllm.__version__,
        "properties": properties,
        "x-flags": {name: flags[name] for name in sorted(flags) if name in properties},
        "x-refused": {name: REFUSED[name] for name in sorted(REFUSED) if name in properties},
        "x-quantization": quantization,
        "x-kv-cache-dtype": list(typing.get_args(CacheDType)),
    }


def schema_text(schema: dict) -> str:
    """The file's bytes: sorted keys, so a regenerated file differs only where vLLM did."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def type_schema(hint) -> dict:
    """JSON Schema of a Python type hint: bool, int, float, str; dict and config dataclasses (vLLM takes a JSON
    object for them) -> object; list, tuple, set -> array; Literal -> enum; X | None adds null; anything else {}
    (any JSON) with the Python type in x-python-type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [type_schema(arg) for arg in args]
        merged = _union(members)
        if not merged or any("x-python-type" in member for member in members):
            merged["x-python-type"] = _python_type(hint)
        return merged
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint in JSON_TYPES:
        return {"type": JSON_TYPES[hint]}
    if dict in (hint, origin):
        return {"type": "object"}
    if dataclasses.is_dataclass(hint):
        return {"type": "object", "x-python-type": _python_type(hint)}
    if {hint, origin} & {list, tuple, set, frozenset}:
        return {"type": "array"}
    return {"x-python-type": _python_type(hint)}


def _union(members: list[dict]) -> dict:
    """One schema accepting each member's values; {} (any JSON) when a member accepts anything."""
    if any("type" not in member and "enum" not in member for member in members):
        return {}
    names = set()
    for member in members:
        names.update([member["type"]] if isinstance(member.get("type"), str) else member.get("type", []))
    nullable = "null" in names
    names.discard("null")
    values = [value for member in members for value in member.get("enum", []) if _json_type(value) not in names]
    listed = sorted(names) + ["null"] * nullable
    if not values:
        return {"type": listed[0] if len(listed) == 1 else listed}
    if not names:
        return {"enum": values + [None] * (nullable and None not in values)}
    return {"anyOf": [{"type": listed[0] if len(listed) == 1 else listed}, {"enum": values}]}


def _json_type(value) -> str:
    return JSON_TYPES.get(type(value), "")


def _python_type(hint) -> str:
    """The type as written, without module paths: "dict[str, Any] | Callable[[Any], Any]"."""
    text = hint.__name__ if isinstance(hint, type) and typing.get_origin(hint) is None else str(hint)
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", text)


def _type_hints(cls) -> dict:
    """typing.get_type_hints, with the names vLLM imports only for type checkers (QuantizationConfigArgs) looked up
    in vLLM's loaded modules; a name found nowhere stays an unknown type (any JSON)."""
    names: dict[str, object] = {}
    while True:
        try:
            return typing.get_type_hints(cls, localns=names)
        except NameError as error:
            if error.name in names:
                raise
            names[error.name] = next((vars(module)[error.name] for module in list(sys.modules.values())
                                      if getattr(module, "__name__", "").startswith("vllm.")
                                      and error.name in vars(module)), type(error.name, (), {}))


def _helps(cls) -> dict[str, str]:
    """The first sentence of each argument's `vllm serve --help` text, where vLLM builds it cheaply (its parser,
    with help on); {} where it cannot (the Python type then describes the argument)."""
    try:
        from vllm.engine import arg_utils
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        needs_help = arg_utils.NEEDS_HELP
        arg_utils.NEEDS_HELP = True     # vLLM leaves the texts out unless --help is on the command line
        arg_utils._compute_kwargs.cache_clear()
        try:
            parser = cls.add_cli_args(FlexibleArgumentParser())
        finally:
            arg_utils.NEEDS_HELP = needs_help
            arg_utils._compute_kwargs.cache_clear()
    except (ImportError, AttributeError):
        return {}
    helps = {}
    for action in parser._actions:
        if isinstance(action.help, str) and action.help.strip():
            paragraph = " ".join(action.help.strip().split("\n\n")[0].split())
            helps[action.dest] = re.split(r"(?<=\.)\s+(?=[A-Z`])", paragraph, maxsplit=1)[0]
    return helps
