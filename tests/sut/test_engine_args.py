"""engine_args.schema.json is what the pinned vLLM generates; every preset in engine_presets.json passes the door;
a preset's values, the flags given over it and what result.json records of them."""
from __future__ import annotations

import dataclasses
import json
import os
import typing

import jsonschema
import pytest

from conftest import SUT_SRC
from mlperf_sut.cli import build_parser
from mlperf_sut.engine import PRESET_KEYS, EngineOptions, preset_engine, requested_preset, sut_flags
from mlperf_sut.engine_args import (ENGINE_ARGS_SCHEMA, build_schema, check_engine_arg, engine_args_schema,
                                    engine_presets, schema_text, type_schema)
from mlperf_sut.errors import InputError
from mlperf_sut.result import load_schema

REGENERATE = (f"regenerate with python -m mlperf_sut engine-args-schema --output "
              f"{(SUT_SRC / 'mlperf_sut' / ENGINE_ARGS_SCHEMA).relative_to(SUT_SRC.parent)}")


def test_committed_schema_is_what_the_pinned_vllm_generates():
    generated = json.loads(schema_text(build_schema(sut_flags())))
    committed = engine_args_schema()
    differ = sorted(key for key in generated["properties"].keys() | committed["properties"].keys()
                    if generated["properties"].get(key) != committed["properties"].get(key))
    assert generated == committed, f"{ENGINE_ARGS_SCHEMA} is not what vLLM {generated['x-vllm-version']} " \
                                   f"generates (properties that differ: {differ[:10]}); {REGENERATE}"


@dataclasses.dataclass
class _Config:
    size: int = 0


@pytest.mark.parametrize("hint, schema", [
    (bool, {"type": "boolean"}), (int | None, {"type": ["integer", "null"]}), (float, {"type": "number"}),
    (dict[str, typing.Any] | None, {"type": ["object", "null"]}),
    (_Config, {"type": "object", "x-python-type": "_Config"}),
    (list[int] | None, {"type": ["array", "null"]}), (tuple[int, ...], {"type": "array"}),
    (typing.Literal["a", "b"], {"enum": ["a", "b"]}),
    (typing.Optional[typing.Literal["a", "b"]], {"enum": ["a", "b", None]}),
    (typing.Literal["auto", "hf"] | str, {"type": "string"}),
    (str | list[str] | None, {"type": ["array", "string", "null"]}),
    (str | type | None, {"x-python-type": "str | type | None"}),
])
def test_python_types_map_to_json_schema(hint, schema):
    assert type_schema(hint) == schema


def test_the_schema_names_the_flags_the_refused_and_the_values_of_quantization():
    schema = engine_args_schema()
    assert schema["x-flags"]["max_num_seqs"] == "--max-num-seqs" and schema["x-flags"]["model"] == "--model"
    assert "enable_prefix_caching" not in schema["x-flags"] and "overstates throughput" in \
        schema["x-refused"]["enable_prefix_caching"]
    assert set(schema["x-flags"]) | set(schema["x-refused"]) <= set(schema["properties"])
    assert "fp8" in schema["x-quantization"] and "fp8" in schema["x-kv-cache-dtype"]
    assert schema["properties"]["quantization"]["enum"] == [*schema["x-quantization"], None]
    assert schema["properties"]["kv_cache_dtype"]["enum"] == schema["x-kv-cache-dtype"]


@pytest.mark.parametrize("name", sorted(engine_presets()["presets"]))
def test_every_preset_passes_the_door(name):
    """A preset holds only what the door lets through: engine flags by name with the schema's types, and engine
    arguments that --engine-arg would take."""
    preset = engine_presets()["presets"][name]
    assert set(preset) == {"description", "engine", "loadgen"} and preset["description"]
    assert set(preset["engine"]) <= {*PRESET_KEYS, "engine_args"}
    preset_engine(name)                                   # raises InputError on anything the door refuses
    for key, value in preset["engine"].items():
        if key != "engine_args":
            jsonschema.validate(value, engine_args_schema()["properties"][key])
    for key, value in preset["engine"].get("engine_args", {}).items():
        check_engine_arg(key, value, f"{name}: engine_args.{key}")
    assert all(isinstance(rate, int | float) and rate > 0 for rate in preset["loadgen"].values())


def test_a_preset_with_what_the_door_refuses_is_refused(monkeypatch):
    presets = json.loads(json.dumps(engine_presets()))
    presets["presets"]["bad"] = {"description": "x", "engine": {"engine_args": {"enable_prefix_caching": True}}}
    monkeypatch.setattr("mlperf_sut.engine.engine_presets", lambda: presets)
    with pytest.raises(InputError, match="preset 'bad': engine_args.enable_prefix_caching: refused: LoadGen"):
        preset_engine("bad")


def _args(tiny_model, *flags):
    return build_parser().parse_args(["run", "--scenario", "Offline", "--mode", "performance", "--model",
                                      str(tiny_model), "--dataset", "d.json", "--output-dir", "out", *flags])


def test_without_a_preset_the_flags_left_out_take_the_engine_defaults(tiny_model):
    args = _args(tiny_model)
    assert EngineOptions.from_args(args) == EngineOptions.for_model(tiny_model)
    assert requested_preset(args) is None


def test_a_preset_sets_the_engine_and_explicit_flags_override_it(tiny_model):
    engine = engine_presets()["presets"]["h200-fp8"]["engine"]
    options = EngineOptions.from_args(_args(tiny_model, "--engine-preset", "h200-fp8"))
    assert {key: getattr(options, key) for key in engine if key != "engine_args"} == {
        key: value for key, value in engine.items() if key != "engine_args"}
    assert options.extra == engine["engine_args"] and options.load_format == "auto"
    assert requested_preset(_args(tiny_model, "--engine-preset", "h200-fp8")) == {"name": "h200-fp8",
                                                                                    "overrides": {}}

    args = _args(tiny_model, "--engine-preset", "h200-fp8", "--max-num-seqs", "512",
                 "--max-model-len", str(engine["max_model_len"]),       # the preset's own value: no override
                 "--tensor-parallel-size", "1",                          # the default, which the preset keeps
                 "--load-format", "dummy",                               # the weights: not a preset's setting
                 "--engine-arg", "async_scheduling=false", "--engine-arg", "stream_interval=4")
    options = EngineOptions.from_args(args)
    assert options.max_num_seqs == 512 and options.max_num_batched_tokens == engine["max_num_batched_tokens"]
    assert options.load_format == "dummy" and options.quantization == "fp8"
    # an --engine-arg replaces the preset's argument of that name; the others stay
    assert options.extra == {**engine["engine_args"], "async_scheduling": False, "stream_interval": 4}
    assert requested_preset(args) == {"name": "h200-fp8", "overrides": {
        "max_num_seqs": 512, "async_scheduling": False, "stream_interval": 4}}


@pytest.mark.parametrize("preset", [None, {"name": "h200-fp8", "overrides": {"max_num_seqs": 512}}])
def test_result_schema_takes_the_engine_preset(preset):
    schema = load_schema()
    assert "engine_preset" not in schema["required"]     # optional: results written before presets stay valid
    jsonschema.validate(preset, schema["properties"]["engine_preset"])


def test_serve_hands_the_preset_to_vllm_and_its_card_names_it(tiny_model, monkeypatch):
    from mlperf_sut import serve
    from mlperf_sut.server_card import SERVER_CARD_ENV

    monkeypatch.setenv(SERVER_CARD_ENV, "")
    monkeypatch.setenv(serve.KEEP_ALIVE_ENV, "")
    execs = []

    def execv(path, argv):
        execs.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        serve.main(["--model", str(tiny_model), "--engine-preset", "h200-fp8", "--max-num-seqs", "512"])
    argv = execs[0]
    assert argv[argv.index("--quantization") + 1] == "fp8" and argv[argv.index("--max-num-seqs") + 1] == "512"
    assert json.loads(argv[argv.index("--compilation-config") + 1]) == {"max_cudagraph_capture_size": 1024}
    card = json.loads(os.environ[SERVER_CARD_ENV])
    assert card["engine_preset"] == {"name": "h200-fp8", "overrides": {"max_num_seqs": 512}}
    assert card["engine"]["max_num_seqs"] == 512 and card["engine"]["async_scheduling"] is True
