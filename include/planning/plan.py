"""Trigger params -> a validated BenchmarkPlan: which SUT runs happen on which node, with which arguments, where.

Three layers of checks, all before any pod starts:
* `trigger_params(deployment)`: each param as a JSON schema (type, enum, bounds, description); the LoadGen keys of
  `user_conf_overrides` and their bounds come from the SUT's user_conf.schema.json. Airflow builds the trigger form
  from it and refuses a bad value when the run is triggered (a bad scenario, a negative sample count, a node this
  installation does not have, min_duration -100).
* `check_at_the_door(conf, deployment)`: what a param schema cannot say: a conf key that is no param (named, with
  the nearest valid name) and a LoadGen schedule too large for memory (with the figure). The api-server runs it on
  every trigger of the DAG (include/planning/trigger_guard.py), before a run exists; make_plan runs it again.
* `make_plan(...)`: the checks that need more than one field or a file (sample count <= data set size, overrides
  that contradict another param, ...). A failure raises PlanError whose message starts with the param's name.

Output directories follow ARCHITECTURE.md: <artifacts>/<run_id>/<branch>/<node_label>/<scenario>/<mode or test>/;
a single-GPU run is one SUT process (one engine) per node and scenario, running that scenario's tests in turn.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import Param

from include.deployment import SUT_PACKAGE, Deployment, count_dataset
from include.mlperf_rules import COMPLIANCE_TESTS, DATASET_SAMPLES, MIN_DURATION_S
from include.planning import engine_settings as engine

SCENARIOS = ["Offline", "Server", "Interactive", "SingleStream"]
MODES = ["performance", "accuracy", "both"]
DISTRIBUTED = ["coordinated", "sharded", "off"]
DTYPES = ["auto", "bfloat16", "float16", "float32"]
# The SUT's one definition of the LoadGen user.conf keys it accepts, their types, ranges and the reason for each
# bound (shipped in the SUT package; the SUT checks every user.conf line and override against the same file).
# The SUT's other definitions beside it: engine_args.schema.json and engine_presets.json
# (include/planning/engine_settings.py).
USER_CONF_SCHEMA_PATH = SUT_PACKAGE / "user_conf.schema.json"
# String sizes: Linux refuses a path longer than PATH_MAX (4,096 bytes); an image reference is a repository of at
# most 255 characters, a tag of at most 128 and a sha256 digest of 71 (Docker's distribution limits). No control
# characters: a newline in a path or image would smuggle a second line into whatever consumes it.
PATH_MAX = 4096
IMAGE_REF_MAX = 512
# `(?!\n)`: Python's `$` (jsonschema's `re.search`) also matches before a final newline, so "/models/x\n" passed.
NO_CONTROL_CHARS = "^[^\\u0000-\\u001f\\u007f]*$(?!\\n)"
# The embedded profile: a smoke test small enough for a laptop CPU. NOT MLPerf-compliant (said in the report).
EMBEDDED_SAMPLES = 16
# LoadGen's early stopping needs ~460 Server queries that all meet the p99 latency limits before it calls a run
# VALID (measured with the tiny model: 208 queries -> "would need to run at least 251 more"); 500 queries at 20 QPS,
# ~25 s, were VALID on 2 busy cores (TTFT p99 ~1 s, limit 2 s). Offline issues the same count: ~15 s there.
EMBEDDED_QUERIES = 500
EMBEDDED_OVERRIDES = {"min_duration": 0, "min_query_count": EMBEDDED_QUERIES}
EMBEDDED_SERVER_QPS = 20
NON_COMPLIANT_NOTE = ("Embedded profile: {n} samples, min_duration=0 and a small min_query_count. Such a run is NOT "
                      "MLPerf-compliant; its figures are a smoke test, not a result.")


class PlanError(ValueError):
    """A trigger param that cannot work; the message starts with the param's name."""


@functools.cache
def user_conf_schema() -> dict:
    """user_conf.schema.json of the SUT (see USER_CONF_SCHEMA_PATH); a missing file is a deployment fault."""
    try:
        return json.loads(USER_CONF_SCHEMA_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"LoadGen key schema not found at {USER_CONF_SCHEMA_PATH}: it ships with the SUT; "
                                "mount or copy sut_image/mlperf_sut/ there") from None


def loadgen_keys() -> list[str]:
    """The user.conf keys user_conf_overrides accepts (the SUT's list)."""
    return sorted(user_conf_schema()["properties"])


def _key_schema(key: str) -> dict[str, Any]:
    """One key's JSON schema for the trigger form: the SUT's bounds, the reason in the description."""
    spec = user_conf_schema()["properties"][key]
    out = {k: v for k, v in spec.items() if not k.startswith("x-")}
    out["description"] = f"{spec['description']} Bounds: {spec['x-reason']}"
    return out


def trigger_params(dep: Deployment) -> dict[str, Param]:
    """The DAG's params, with defaults from the deployment's profile (full: MLPerf-compliant; embedded: small)."""
    emb = dep.embedded
    samples = EMBEDDED_SAMPLES if emb else (dep.dataset_size or DATASET_SAMPLES)
    scenario_list = {"type": "array", "items": {"type": "string", "enum": SCENARIOS}, "uniqueItems": True}
    schema = user_conf_schema()
    max_samples = schema["x-schedule"]["max_samples"]
    path = {"type": "string", "minLength": 1, "maxLength": PATH_MAX, "pattern": NO_CONTROL_CHARS}
    qps = schema["properties"]["target_qps"]
    presets = engine.presets(SUT_PACKAGE)
    params = {
        "scenarios": Param(["Offline", "Server"], **scenario_list, minItems=1,
                           description="LoadGen scenarios of the single-GPU runs."),
        "mode": Param("both", enum=MODES, description="performance, accuracy (ROUGE), or both."),
        "accuracy_scenarios": Param(["Offline"] if emb else ["Offline", "Server"], **scenario_list,
                                    description="Scenarios that also get an accuracy run when mode is accuracy/both."),
        "total_sample_count": Param(samples, type="integer", minimum=1, maximum=max_samples,
                                    description=f"Samples LoadGen may draw from the data set (MLPerf: all "
                                                f"{DATASET_SAMPLES:,}). "
                                                "At most LoadGen's schedule limit (user_conf.schema.json)."),
        "nodes": Param(list(dep.nodes), type="array", items={"type": "string", "enum": list(dep.nodes)},
                       minItems=1, uniqueItems=True, description="GPU nodes that run (from MLPERF_NODES)."),
        "distributed": Param("coordinated" if len(dep.nodes) > 1 else "off", enum=DISTRIBUTED,
                             description="coordinated: one LoadGen drives a vLLM server per node; sharded: each "
                                         "node runs LoadGen on its shard at the same time; off: single-GPU only."),
        "distributed_scenarios": Param(["Offline"], **scenario_list,
                                       description="Scenarios of the distributed branch (performance mode)."),
        "model_path": Param(dep.model_dir, **path, description="Model weights (a volume)."),
        "dataset_path": Param(dep.dataset, **path, description="cnn_eval.json (a volume)."),
        "sut_image": Param(dep.sut_image, type="string", minLength=1, maxLength=IMAGE_REF_MAX,
                           pattern=NO_CONTROL_CHARS, description="SUT image (kubernetes runner)."),
        "engine_preset": Param(None, type=["null", "string"], enum=[None, *sorted(presets)],
                               description="Named engine settings measured on a GPU (sut_image/mlperf_sut/"
                                           "engine_presets.json), with the LoadGen rates they were measured at; "
                                           "a param changed from its default overrides the preset's value. "
                                           + " ".join(f"{name}: {spec['description']}"
                                                      for name, spec in sorted(presets.items()))),
        "dtype": Param("auto" if emb else "bfloat16", enum=DTYPES, description="vLLM dtype of the weights."),
        "quantization": Param(None, type=["null", "string"], enum=[None, *engine.choices(SUT_PACKAGE, "quantization")],
                              description="vLLM quantization, e.g. fp8 (weights quantised at load). null: none, or "
                                          "the preset's."),
        "kv_cache_dtype": Param(None, type=["null", "string"],
                                enum=[None, *engine.choices(SUT_PACKAGE, "kv_cache_dtype")],
                                description="vLLM KV cache dtype, e.g. fp8. null: the engine's (auto), or the preset's."),
        "load_format": Param(dep.load_format, enum=list(engine.LOAD_FORMATS),
                             description="auto: the weights under model_path; dummy: random weights from config.json "
                                         "(a smoke run without weights: performance is real, accuracy is not "
                                         "applicable, and the run is never MLPerf-compliant)."),
        "engine_args": Param({}, type="object", additionalProperties=False, properties=engine.free_args(SUT_PACKAGE),
                             description="Further vLLM engine arguments, e.g. {\"async_scheduling\": true, "
                                         "\"compilation_config\": {\"max_cudagraph_capture_size\": 1024}}. Keys and "
                                         "types: the pinned vLLM's, sut_image/mlperf_sut/engine_args.schema.json; "
                                         "prefix caching is refused (LoadGen repeats samples)."),
        "tensor_parallel_size": Param(1, type="integer", minimum=1, maximum=8, description="GPUs per vLLM engine."),
        # 65,536 sequences of ~900 tokens at 128 KiB per token of KV cache are 7.5 TB: beyond any node.
        "max_num_seqs": Param(None, type=["null", "integer"], minimum=1, maximum=65_536,
                              description="vLLM max_num_seqs (null: engine default; at most 65,536)."),
        # 1,048,576 tokens in one scheduler step is 8 contexts of 131,072: beyond any GPU's activation memory.
        "max_num_batched_tokens": Param(None, type=["null", "integer"], minimum=1, maximum=1_048_576,
                                        description="vLLM max_num_batched_tokens (null: engine default; at most "
                                                    "1,048,576)."),
        "enforce_eager": Param(emb, type="boolean",
                               description="vLLM without torch.compile/CUDA graphs: quick engine starts for smoke "
                                           "runs on a CPU; slower generation (off for real benchmarks)."),
        "server_target_qps": Param(EMBEDDED_SERVER_QPS if emb else None, type=["null", "number"],
                                   exclusiveMinimum=qps["exclusiveMinimum"], maximum=qps["maximum"],
                                   description="Server/Interactive target QPS per GPU (null: the SUT's user.conf; a "
                                               "coordinated run over N nodes offers N x this). Bounds: "
                                               + schema["properties"]["target_qps"]["x-reason"]),
        "offline_target_qps": Param(None, type=["null", "number"], exclusiveMinimum=qps["exclusiveMinimum"],
                                    maximum=qps["maximum"],
                                    description="Offline's expected samples/s per GPU (null: the SUT's user.conf, "
                                                "set for bf16 on one H200; a coordinated run over N nodes expects N "
                                                "x this). LoadGen issues 1.1 x min_duration x this, in "
                                                "whole passes over the data set: set it near the measured rate, or "
                                                "a faster engine finishes before min_duration (INVALID). Bounds: "
                                                + schema["properties"]["target_qps"]["x-reason"]),
        "user_conf_overrides": Param(dict(EMBEDDED_OVERRIDES) if emb else {}, type="object",
                                     additionalProperties=False,
                                     properties={key: _key_schema(key) for key in loadgen_keys()},
                                     description="LoadGen user.conf keys applied to every run, e.g. min_duration "
                                                 "(ms). Keys, types and bounds: the SUT's user_conf.schema.json."),
        "compliance_tests": Param([] if emb else list(COMPLIANCE_TESTS), type="array",
                                  items={"type": "string", "enum": list(COMPLIANCE_TESTS)}, uniqueItems=True,
                                  description="MLPerf compliance tests run on every node for each scenario "
                                              "(llama3.1-8b: TEST06, a 100-query performance run checked for "
                                              "first-token, EOS and token-count consistency; a submission needs "
                                              "it). [] for none."),
        "regression_threshold_pct": Param(5.0, type="number", minimum=0, maximum=100,
                                          description="A change smaller than this is never a regression."),
        "fail_on_regression": Param(not emb, type="boolean", description="Fail the DAG run when a regression is found."),
    }
    # A node's own weights and engine settings: each key with its param's schema (what node_overrides may set is one
    # list, include/planning/engine_settings.py). The coordinated branch's servers take the common settings.
    per_node = {"model_path": path, **{key: params[key].schema for key in engine.NODE_ENGINE_KEYS}}
    params["node_overrides"] = Param({}, type="object", additionalProperties={
        "type": "object", "additionalProperties": False, "properties": per_node},
        description="Per-node differences (single and sharded runs), e.g. {\"gpu-1\": {\"model_path\": "
                    "\"/models/other\", \"max_num_seqs\": 512}}; keys: " + ", ".join(per_node) + ".")
    return params


@dataclass(frozen=True)
class PlannedTest:
    """One LoadGen test of a SUT run, into its own output directory <scenario>/<mode or compliance test>/."""

    mode: str
    compliance_test: str | None          # a compliance test (performance mode under LoadGen's audit.config)
    output_dir: str

    @property
    def name(self) -> str:
        return self.compliance_test or self.mode


# The most tests one SUT process runs: performance, accuracy and every compliance test of one scenario (the runners'
# task timeouts, fixed when the DAG is parsed, must cover the longest).
MAX_TESTS_PER_RUN = 2 + len(COMPLIANCE_TESTS)


@dataclass(frozen=True)
class RunSpec:
    """One SUT process: `python -m mlperf_sut <arguments>` on `node`, running `tests` in order on one engine (the
    first into `output_dir`, the others through `--also`): an engine start (weights, CUDA graphs, warm-up) costs
    minutes of GPU time, paid once per node and scenario instead of once per test."""

    branch: str                  # single | distributed
    label: str                   # node, or "coordinated"
    nodes: list[str]             # nodes whose GPUs it uses
    scenario: str
    output_dir: str              # the first test's
    arguments: list[str]
    timeout_s: int               # the deployment's run timeout x the number of tests
    tests: list[PlannedTest]

    @property
    def name(self) -> str:
        return f"{self.branch}/{self.label}/{self.scenario}/{'+'.join(t.name for t in self.tests)}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "name": self.name}


@dataclass(frozen=True)
class BenchmarkPlan:
    run_id: str
    run_dir: str                 # <artifacts>/<run_slug>
    profile: str
    compliant: bool
    notes: list[str]
    nodes: list[str]
    distributed: str
    model_path: str
    dataset_path: str
    total_sample_count: int
    dataset_size: int | None
    regression_threshold_pct: float
    fail_on_regression: bool
    server_engine_args: list[str]       # `serve` flags after --model (coordinated branch)
    runs: list[RunSpec] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    # When the plan was made (ISO 8601 UTC): a result.json of a SUT process started before it is an earlier run's
    # (pipeline.parse_plan). None in plans made before it was recorded.
    planned_utc: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "runs": [r.to_dict() for r in self.runs]}

    def xcom(self, all_nodes: tuple[str, ...]) -> dict[str, Any]:
        """The plan task's outputs: the whole plan, and per-node run lists to map over (empty when not selected)."""
        out: dict[str, Any] = {"plan": self.to_dict()}
        out["coordinated"] = [r.to_dict() for r in self.runs if r.label == "coordinated"]
        out["servers"] = {"nodes": self.nodes if out["coordinated"] else [], "run_id": self.run_id,
                          "run_dir": self.run_dir, "model_path": self.model_path, "image": self.params.get("sut_image"),
                          "engine_args": self.server_engine_args}
        return out


def run_slug(run_id: str) -> str:
    """An Airflow run id as a directory name (manual__2026-01-01T02:00:00+00:00 has ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


def _fail(param: str, message: str) -> PlanError:
    return PlanError(f"{param}: {message}")


# The params that set LoadGen's target_qps of one scenario kind each (user_conf_overrides' target_qps sets every one).
RATE_PARAMS = ("offline_target_qps", "server_target_qps")


def _rate_param(scenario: str) -> str:
    """The param that sets `scenario`'s target_qps (SingleStream has none: its rate is target_latency)."""
    return "offline_target_qps" if scenario == "Offline" else "server_target_qps"


def _overrides(params: dict[str, Any], scenario: str, preset: str | None = None, gpus: int = 1) -> list[str]:
    """LoadGen overrides of one run: user_conf_overrides, then the scenario's rate: its param, else the engine
    preset's (a target_qps in user_conf_overrides is explicit and wins over the preset's). The rate params and a
    preset's rates are per GPU: one LoadGen over `gpus` GPUs (the coordinated run) offers `gpus` x that rate, or two
    GPUs would finish Offline's samples in half of min_duration (INVALID) and idle at half of Server's load.
    user_conf_overrides' target_qps is LoadGen's own setting and passes as given."""
    values = dict(params.get("user_conf_overrides") or {})
    if scenario != "SingleStream":
        rate = params.get(_rate_param(scenario))
        if rate is None and "target_qps" not in values:
            rate = engine.preset_rates(SUT_PACKAGE, preset).get(_rate_param(scenario))
        if rate is not None:
            values["target_qps"] = rate * gpus
    out: list[str] = []
    for key, value in sorted(values.items()):
        out += ["--override", f"{key}={_conf_number(key, value)}"]
    return out


def _conf_number(key: str, value: float) -> str:
    """A value as LoadGen's user.conf needs it: an integer key as digits (JSON's 16.0 is 16; LoadGen would read
    "16.0" as 16 but the SUT refuses it), a rate as a plain decimal."""
    if user_conf_schema()["properties"][key]["type"] == "integer":
        return str(int(value))
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _nearest(name: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def check_at_the_door(conf: dict[str, Any], dep: Deployment) -> None:
    """What Airflow's param schemas cannot say, checked on a trigger's conf before a DAG run exists (the api-server's
    trigger guard) and again by the plan task (triggers that bypass the API): every key is a param (Airflow would
    silently run an unknown key's default), and the LoadGen schedule of each planned test fits in memory.
    Raises PlanError naming the param, the key and the nearest valid name."""
    params = trigger_params(dep)
    for key in conf:
        if key not in params:
            raise _fail(key if len(key) <= 60 else key[:60] + "...",
                        f"not a param of this DAG{_nearest(key, sorted(params))} (params: {', '.join(params)})")
    overrides = conf.get("user_conf_overrides")
    if isinstance(overrides, dict):
        keys = loadgen_keys()
        for key in overrides:
            if key not in keys:
                ignored = user_conf_schema()["x-ignored"].get(key)
                raise _fail("user_conf_overrides", f"{str(key)[:60]!r} " + (
                    f"cannot be set: {ignored}" if ignored else
                    f"is not a LoadGen user.conf key{_nearest(key, keys)} (keys: {', '.join(keys)})"))
    nodes = conf.get("node_overrides")
    try:
        engine.check_engine_args("engine_args", conf.get("engine_args"), SUT_PACKAGE)
        for node, own in (nodes.items() if isinstance(nodes, dict) else []):
            if isinstance(own, dict):
                engine.check_engine_args(f"node_overrides.{str(node)[:60]}.engine_args", own.get("engine_args"),
                                         SUT_PACKAGE)
    except engine.EngineSettingsError as refused:
        raise PlanError(str(refused)) from None
    if _valid_but_for_rates(conf, params):       # otherwise Airflow's param validation names the value
        _check_schedule({name: param.value for name, param in params.items()} | dict(conf))


def _valid_but_for_rates(conf: dict[str, Any], params: dict[str, Param]) -> bool:
    """Every value passes its param's schema, the rates' maximum aside: a rate too high for LoadGen's schedule is
    refused by _check_schedule, which gives the figure."""
    import jsonschema

    for name, value in conf.items():
        schema = dict(params[name].schema)
        if name in RATE_PARAMS:
            schema.pop("maximum", None)
        if name == "user_conf_overrides":
            rate = {k: v for k, v in schema["properties"]["target_qps"].items() if k != "maximum"}
            schema["properties"] = {**schema["properties"], "target_qps": rate}
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError:
            return False
    return True


def _check_schedule(p: dict[str, Any]) -> None:
    """LoadGen builds a performance test's whole schedule in memory before the first query (user_conf.schema.json's
    x-schedule): refuse a rate x duration that cannot fit, with the figure. Values the SUT's user.conf supplies are
    checked by the SUT (exit 2)."""
    schema = user_conf_schema()
    limits = schema["x-schedule"]
    conf = p.get("user_conf_overrides") or {}
    if p.get("mode") == "accuracy":
        return
    # (scenario, GPUs of one LoadGen): a coordinated run offers a rate param's per-GPU rate x its GPUs (_overrides)
    tests = {(s, 1) for s in p.get("scenarios") or []}
    if p.get("distributed", "off") != "off":
        gpus = len(p.get("nodes") or []) if p["distributed"] == "coordinated" else 1
        tests |= {(s, max(gpus, 1)) for s in p.get("distributed_scenarios") or []}
    duration_s = conf.get("min_duration", MIN_DURATION_S * 1000) / 1000
    for scenario, gpus in sorted(tests):
        if scenario == "SingleStream":
            param, latency = "user_conf_overrides", conf.get("target_latency")
            wanted = None if latency is None else duration_s * 1000 / latency
            figure = f"1 / target_latency {latency} ms" if latency is not None else ""
        else:   # a rate: its own param (offline_/server_target_qps), else user_conf_overrides' target_qps
            param = _rate_param(scenario) if p.get(_rate_param(scenario)) is not None else "user_conf_overrides"
            rate = p[param] if param in RATE_PARAMS else conf.get("target_qps")
            scale = gpus if param in RATE_PARAMS and rate is not None else 1
            if scale > 1 and rate * scale > schema["properties"]["target_qps"]["maximum"]:
                raise _fail(param, f"{scenario}: the coordinated run over {gpus} GPUs offers {gpus} x {rate:g}/s = "
                                   f"{rate * scale:g}/s, above LoadGen's target_qps maximum "
                                   f"{schema['properties']['target_qps']['maximum']:g}: lower the rate")
            slack = limits["offline_slack"] if scenario == "Offline" else None   # LoadGen's margin on Offline's count
            wanted = None if rate is None else (slack or 1) * rate * scale * duration_s
            figure = (f"{param if param in RATE_PARAMS else 'target_qps'} {rate:g}/s"
                      + (f" x {scale} GPUs" if scale > 1 else "")
                      + (f" x {slack}" if slack else "") if rate is not None else "")
        if wanted is None:
            continue
        count = max(conf.get("min_query_count", 0), math.ceil(wanted)) if math.isfinite(wanted) else math.inf
        if conf.get("max_query_count"):
            count = min(count, conf["max_query_count"])
        if count > limits["max_samples"]:
            raise _fail(param, f"{scenario}: {figure} x min_duration {duration_s:g} s = {count:,} queries, which "
                               f"LoadGen schedules in memory before the first query (~"
                               f"{count * limits['bytes_per_sample'] / 1e9:,.1f} GB at {limits['bytes_per_sample']}"
                               f" bytes each); the limit is {limits['max_samples']:,}: lower the rate or min_duration")


def make_plan(params: dict[str, Any], dep: Deployment, run_id: str) -> BenchmarkPlan:
    """Cross-field checks, then every run of this DAG run with its SUT arguments and output directory."""
    check_at_the_door(dict(params), dep)
    p = {k: params[k] for k in trigger_params(dep)}     # KeyError here = a param missing from the DAG
    nodes = list(p["nodes"])
    unknown = sorted(set(nodes) - set(dep.nodes))
    if unknown:
        raise _fail("nodes", f"{', '.join(unknown)} not configured (MLPERF_NODES={','.join(dep.nodes)})")
    bad = sorted(set(p["node_overrides"]) - set(nodes))
    if bad:
        raise _fail("node_overrides", f"{', '.join(bad)} not among the selected nodes {nodes}")
    dataset_size = count_dataset(p["dataset_path"]) or dep.dataset_size
    if dataset_size is None and dep.runner == "local":
        raise _fail("dataset_path", f"{p['dataset_path']} is not a readable JSON list of samples")
    dataset_size = dataset_size or (DATASET_SAMPLES if dep.runner != "local" else None)
    if dataset_size is not None and p["total_sample_count"] > dataset_size:
        raise _fail("total_sample_count", f"{p['total_sample_count']} exceeds the {dataset_size} samples of "
                                          f"{p['dataset_path']}")
    if dep.runner == "local" and not Path(p["model_path"], "config.json").is_file():
        raise _fail("model_path", f"{p['model_path']} has no config.json")
    for rate in RATE_PARAMS:
        if p[rate] is not None and "target_qps" in p["user_conf_overrides"]:
            raise _fail("user_conf_overrides", f"target_qps is also set by {rate}; set one of them")
    distributed = p["distributed"]
    if distributed != "off" and len(nodes) < 2:
        raise _fail("distributed", f"{distributed!r} needs at least two nodes (selected: {nodes}); use 'off'")
    if distributed != "off" and not p["distributed_scenarios"]:
        raise _fail("distributed_scenarios", f"empty while distributed={distributed!r}")
    if distributed == "sharded" and p["total_sample_count"] < len(nodes):
        raise _fail("total_sample_count", f"{p['total_sample_count']} samples cannot be sharded over {len(nodes)} nodes")
    modes = {"both": ["performance", "accuracy"]}.get(p["mode"], [p["mode"]])

    defaults = {name: param.value for name, param in trigger_params(dep).items()}
    node_engine = {node: engine.node_values(p, defaults, node) for node in nodes}
    dummy = sorted(node for node, (values, _) in node_engine.items() if values["load_format"] == "dummy")
    compliant = (not dep.embedded and p["total_sample_count"] == DATASET_SAMPLES and not dummy
                 and not {"min_duration", "min_query_count", "max_duration", "max_query_count"}
                 & set(p["user_conf_overrides"]))
    notes = [] if compliant or (dummy and p["total_sample_count"] == DATASET_SAMPLES) else [
        NON_COMPLIANT_NOTE.format(n=p["total_sample_count"]) if dep.embedded else
        f"Not MLPerf-compliant: {p['total_sample_count']} samples and user.conf overrides "
        f"{p['user_conf_overrides'] or 'none'} (MLPerf needs {DATASET_SAMPLES:,} samples and LoadGen's minimum "
        "durations)."]
    missing_tests = [t for t in COMPLIANCE_TESTS if t not in p["compliance_tests"]]
    if missing_tests and not dep.embedded:
        notes.append(f"Compliance test(s) {', '.join(missing_tests)} not run (param compliance_tests): an MLPerf "
                     "submission of llama3.1-8b needs them.")
    if dummy:
        notes.append(f"Weights are random (load_format=dummy on {', '.join(dummy)}): performance is real, accuracy "
                     "is not applicable, and the run is not MLPerf-compliant.")

    run_dir = Path(dep.artifacts_dir, run_slug(run_id))

    def engine_of(node: str | None) -> list[str]:
        """The SUT's engine flags for a node (None: the common settings, the coordinated branch's servers)."""
        return engine.sut_flags(*(node_engine[node] if node else engine.node_values(p, defaults, None)), SUT_PACKAGE)

    def preset_of(node: str | None) -> str | None:
        return (node_engine[node][0] if node else p)["engine_preset"]

    def spec(branch: str, label: str, run_nodes: list[str], scenario: str, model: str, extra: list[str],
             tests: list[tuple[str, str | None]], node: str | None) -> RunSpec:
        """One SUT process running `tests` ((mode, compliance test) pairs) of one scenario in order."""
        planned = [PlannedTest(mode, test, str(run_dir / branch / label / scenario / (test or mode)))
                   for mode, test in tests]
        first = planned[0]
        also = [arg for t in planned[1:] for arg in ("--also", f"{t.name}={t.output_dir}")]
        args = ["run", "--scenario", scenario, "--mode", first.mode, "--model", model, "--dataset", p["dataset_path"],
                "--output-dir", first.output_dir, "--total-sample-count", str(p["total_sample_count"]),
                "--run-id", run_id,     # recorded in result.json: a result of another run is never read as this one's
                *(["--compliance-test", first.compliance_test] if first.compliance_test else []), *also, *extra,
                *_overrides(p, scenario, preset_of(node), gpus=len(run_nodes))]
        return RunSpec(branch, label, run_nodes, scenario, first.output_dir, args,
                       dep.run_timeout_s * len(planned), planned)

    def model_of(node: str) -> str:
        return p["node_overrides"].get(node, {}).get("model_path", p["model_path"])

    runs: list[RunSpec] = []
    for node in nodes:
        for scenario in p["scenarios"]:
            # One engine per node and scenario: performance, accuracy (where asked), then the compliance tests.
            tests: list[tuple[str, str | None]] = [
                (mode, None) for mode in modes if mode == "performance" or scenario in p["accuracy_scenarios"]]
            tests += [("performance", test) for test in p["compliance_tests"]]
            if tests:
                runs.append(spec("single", node, [node], scenario, model_of(node),
                                 ["--node", node, "--backend", "vllm", *engine_of(node)], tests, node))
    if distributed == "coordinated":
        for scenario in p["distributed_scenarios"]:
            # --endpoint NODE=URL pairs are appended when the servers exist (runners.start_servers).
            runs.append(spec("distributed", "coordinated", nodes, scenario, p["model_path"],
                             ["--node", "coordinator", "--backend", "http"], [("performance", None)], None))
    elif distributed == "sharded":
        for scenario in p["distributed_scenarios"]:
            for index, node in enumerate(nodes):
                runs.append(spec("distributed", node, [node], scenario, model_of(node),
                                 ["--node", node, "--backend", "vllm", "--shard-index", str(index),
                                  "--shard-count", str(len(nodes)), *engine_of(node)], [("performance", None)],
                                 node))
    return BenchmarkPlan(
        run_id=run_id, run_dir=str(run_dir), profile=dep.profile, compliant=compliant, notes=notes, nodes=nodes,
        distributed=distributed, model_path=p["model_path"], dataset_path=p["dataset_path"],
        total_sample_count=p["total_sample_count"], dataset_size=dataset_size,
        regression_threshold_pct=float(p["regression_threshold_pct"]), fail_on_regression=p["fail_on_regression"],
        server_engine_args=engine_of(None), runs=runs, params=p,
        planned_utc=datetime.now(timezone.utc).isoformat(),
    )


def runs_of(plan: dict[str, Any], node: str, branch: str) -> list[dict[str, Any]]:
    """One node's share of a branch (empty when the node was not selected): what its mapped SUT task runs."""
    return [r for r in plan["runs"] if r["branch"] == branch and r["label"] == node]


def plan_outputs(params: dict[str, Any], dep: Deployment, run_id: str) -> dict[str, Any]:
    """The plan task: validate, plan, write plan.json beside the artefacts (the parse step's list of expected runs)."""
    import json

    plan = make_plan(params, dep, run_id)
    Path(plan.run_dir).mkdir(parents=True, exist_ok=True)
    # The SUT writes below it as its own user (uid 10001, sut_image/Dockerfile), not Airflow's: on the shared
    # artefacts volume of the kubernetes runner the run directory must be writable for it.
    Path(plan.run_dir).chmod(0o777)
    Path(plan.run_dir, "plan.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    return plan.xcom(dep.nodes)
