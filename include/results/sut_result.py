"""result.json as a typed record: validated once against the SUT's schema where it is read, then passed as `SutResult`.

The SUT writes result.json beside LoadGen's logs (sut_image/mlperf_sut/result.schema.json, schema_version 1). Every
reader downstream takes these fields, never `.get()` chains on the raw dict. `to_dict()` gives back the file's JSON,
so XCom and analysis.json carry exactly what the SUT wrote.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    load_format: str               # 'dummy': random weights, accuracy meaningless

    @property
    def dummy_weights(self) -> bool:
        return self.load_format == "dummy"

    @property
    def weights_unknown(self) -> bool:
        """'remote': an http run whose servers did not report their load format (written before the server card)."""
        return self.load_format == "remote"


@dataclass(frozen=True)
class DatasetInfo:
    path: str
    total_sample_count: int        # samples LoadGen could draw from
    dataset_size: int              # samples in the file
    sha256: str


@dataclass(frozen=True)
class AcceleratorInfo:
    kind: str                      # gpu | cpu
    name: str
    count: int                     # accelerators on the node
    driver: str | None
    memory_gib: float | None


@dataclass(frozen=True)
class HostInfo:
    """The machine the SUT process saw (optional in result.json: absent in results written before it)."""

    cpu_model: str | None
    sockets: int | None
    cores_per_socket: int | None
    logical_cpus: int | None
    memory_gib: float | None
    os: str | None
    kernel: str | None


@dataclass(frozen=True)
class Counts:
    queries_issued: int
    samples_completed: int
    output_tokens: int


@dataclass(frozen=True)
class Timing:
    start_utc: str | None
    end_utc: str | None
    duration_s: float | None


@dataclass(frozen=True)
class LoadGenTest:
    """One LoadGen test a SUT process ran (result.json `process.tests`), with the timing of the test's own
    result.json (None where the test failed before its timed part ended)."""
    name: str                      # as `--also` names it: performance, accuracy, TEST06
    scenario: str
    output_dir: str
    start_utc: str | None
    end_utc: str | None
    duration_s: float | None
    status: str                    # completed | failed


@dataclass(frozen=True)
class ProcessClock:
    """The SUT process's clock (result.json `process`): start, engine start and readiness, stop (None: not
    stopped cleanly), and the LoadGen tests it ran up to the write, in order (empty in results written before the
    SUT listed them). Tests of one process, i.e. one engine, share `id`."""
    id: str
    start_utc: str
    engine_start_utc: str | None
    engine_ready_utc: str | None
    stopped_utc: str | None
    tests: list[LoadGenTest] = dataclasses.field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProcessClock":
        return cls(**{**data, "tests": [LoadGenTest(**t) for t in data.get("tests", [])]})


@dataclass(frozen=True)
class Endpoint:
    url: str
    node: str
    samples_completed: int
    output_tokens: int
    accelerator: AcceleratorInfo | None = None     # the server's own (its card); None in results written before

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Endpoint":
        acc = data.get("accelerator")
        return cls(data["url"], data["node"], data["samples_completed"], data["output_tokens"],
                   AcceleratorInfo(**acc) if acc else None)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int


@dataclass(frozen=True)
class EnginePreset:
    """The named engine settings a run started from (sut_image/mlperf_sut/engine_presets.json) and the values given
    explicitly over them."""
    name: str
    overrides: dict[str, Any]

    def describe(self) -> str:
        """'h200-fp8' or 'h200-fp8 + max_num_seqs=512': what the report's settings table shows."""
        extra = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'), sort_keys=True) if not isinstance(v, str) else v}"
                          for k, v in sorted(self.overrides.items()))
        return self.name + (f" + {extra}" if extra else "")


@dataclass(frozen=True)
class SutResult:
    """What the SUT said about one run (result.json, schema_version 1)."""

    schema_version: int
    status: str                    # completed | failed
    error: str | None
    scenario: str
    mode: str
    node: str
    backend: str                   # vllm (in-process) | http (over vLLM servers)
    model: ModelInfo
    dataset: DatasetInfo
    versions: dict[str, str | None]
    accelerator: AcceleratorInfo
    engine: dict[str, Any]         # vLLM engine arguments in effect (open-ended: every argument the SUT passed)
    generation: dict[str, Any]
    loadgen_settings: dict[str, Any]
    config_hash: str
    timing: Timing
    counts: Counts
    endpoints: list[Endpoint]
    shard: Shard | None
    accuracy_meaningful: bool
    files: list[str]
    host: HostInfo | None = None
    process: ProcessClock | None = None     # None: written before the SUT recorded it
    engine_preset: EnginePreset | None = None   # None: no preset (or written before presets existed)
    run_id: str | None = None      # the pipeline run the SUT ran for (--run-id); None: not given, or written before

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SutResult":
        """From a result.json already validated against the schema (run_artifacts.load_result)."""
        return cls(
            schema_version=data["schema_version"], status=data["status"], error=data["error"],
            scenario=data["scenario"], mode=data["mode"], node=data["node"], backend=data["backend"],
            model=ModelInfo(**data["model"]), dataset=DatasetInfo(**data["dataset"]),
            versions=dict(data["versions"]), accelerator=AcceleratorInfo(**data["accelerator"]),
            engine=dict(data["engine"]), generation=dict(data["generation"]),
            loadgen_settings=dict(data["loadgen_settings"]), config_hash=data["config_hash"],
            timing=Timing(**data["timing"]), counts=Counts(**data["counts"]),
            endpoints=[Endpoint.from_json(e) for e in data["endpoints"]],
            shard=Shard(**data["shard"]) if data["shard"] is not None else None,
            accuracy_meaningful=data["accuracy_meaningful"], files=list(data["files"]),
            host=HostInfo(**data["host"]) if data.get("host") else None,
            process=ProcessClock.from_json(data["process"]) if data.get("process") else None,
            engine_preset=EnginePreset(**data["engine_preset"]) if data.get("engine_preset") else None,
            run_id=data.get("run_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- what several readers ask of a run -------------------------------------------------------------------------

    @property
    def prefix_caching(self) -> bool:
        """Whether the engine reused the KV cache of prompts seen before. Results written before the SUT recorded
        the setting ran vLLM's default: on (the in-process backend; an http run's servers said nothing)."""
        if "enable_prefix_caching" in self.engine:
            return bool(self.engine["enable_prefix_caching"])
        return self.backend == "vllm" and bool(self.engine)

    @property
    def accelerator_known(self) -> bool:
        """False for a coordinated run whose servers did not report what they run on (results written before the
        server card): its `accelerator` and `engine` are then the coordinator's, which served no query."""
        return not (self.backend == "http" and self.endpoints and any(e.accelerator is None for e in self.endpoints))

    @property
    def endpoint_nodes(self) -> list[str]:
        """The nodes a coordinated run drove, in order, each once."""
        return list(dict.fromkeys(e.node for e in self.endpoints if e.node))

    @property
    def engines(self) -> int:
        """vLLM engines that served the run: one per endpoint of a coordinated run, else one (data_parallel_size
        where the engine arguments give it)."""
        if self.endpoints:
            return len({e.url for e in self.endpoints})
        return int(self.engine.get("data_parallel_size") or 1)
