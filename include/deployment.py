"""Deploy-time configuration: what an operator sets once per installation, from environment variables.

Trigger-time choices (scenarios, sample count, engine limits, ...) are DAG params; what is fixed for an
installation lives here: which runner starts the SUT, which GPU nodes exist (so per-node tasks and pools are
static), where artefacts, weights and the data set are, and the profile that chooses the params' defaults.

| variable | default | meaning |
|---|---|---|
| MLPERF_RUNNER | kubernetes | `kubernetes`: the SUT runs in pods; `local`: as processes of the SUT venv |
| MLPERF_NODES | gpu-0 (local: local-0,local-1) | comma list of GPU nodes; each gets pool `mlperf_gpu_<node>` |
| MLPERF_PROFILE | full | `full`: MLPerf-compliant defaults; `embedded`: a small non-compliant smoke profile |
| MLPERF_SCHEDULE | 0 2 * * * | cron of the nightly run; `none` for manual runs only |
| MLPERF_ARTIFACTS_DIR | /artifacts (local: <repo>/.artifacts) | root of `<run_id>/<branch>/<node>/<scenario>/<mode>/` |
| MLPERF_HISTORY_URL | sqlite:///<artifacts>/history.sqlite | SQLAlchemy URL of the history store (may hold a password: never logged) |
| MLPERF_MODEL_DIR | /models/Llama-3.1-8B-Instruct (local: <repo>/.cache/tiny-llama) | weights, from a volume |
| MLPERF_DATASET | /data/cnn_eval.json (local: <repo>/.cache/tiny-cnn/cnn_eval.json) | data set, from a volume |
| MLPERF_DATASET_SIZE | counted when the file is readable here, else MLPerf's full data set | samples in the data set |
| MLPERF_SUT_IMAGE | mlperf-sut:latest | SUT container image (kubernetes runner) |
| MLPERF_SUT_PYTHON | <repo>/.venv-sut/bin/python | SUT interpreter (local runner) |
| MLPERF_SUT_PYTHONPATH | (none) | folders (`:`-separated) the SUT imports from after sut_image/, e.g. an offline vLLM bundle on a GPU host (local runner) |
| MLPERF_LOAD_FORMAT | auto | default of the param load_format (`dummy`: random weights, accuracy not applicable) |
| MLPERF_RUN_TIMEOUT_S | 14400 (embedded 900) | one SUT run; the process group / pod is killed after it |
| MLPERF_SERVER_START_TIMEOUT_S | 1800 (embedded 300) | vLLM servers of the coordinated branch until /health |
| MLPERF_RETRIES | 1 | Airflow retries of every task (bad input, SUT exit 2, is never retried) |
| MLPERF_RETRY_DELAY_S | 300 | delay between retries |
| MLPERF_NOTIFY_WEBHOOK | (none) | URL that receives the run summary as JSON (a secret: never logged) |
| MLPERF_SUBMISSION_DIVISION | open | MLPerf division of the submission tree: closed, open or network |
| MLPERF_SUBMITTER | (none) | the organisation's name as MLCommons knows it (the tree's folder and systems' `submitter`) |
| MLPERF_SYSTEM_STATUS | (none) | availability of the systems: available, preview or rdi |
| MLPERF_SYSTEM_DESCRIPTION | (none) | JSON file of the system fields only a person knows (cooling, storage, networking, ...) |
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from include import mlperf_rules


REPO_ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ("kubernetes", "local")
PROFILES = ("full", "embedded")
POOL_PREFIX = "mlperf_gpu_"
NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")   # a Kubernetes node name (RFC 1123)


class DeploymentError(ValueError):
    """A deploy-time environment variable is wrong; the message names it."""


@dataclass(frozen=True)
class Deployment:
    runner: str
    nodes: tuple[str, ...]
    profile: str
    schedule: str | None
    artifacts_dir: Path
    history_url: str = field(repr=False)          # may carry a password
    model_dir: str = ""
    dataset: str = ""
    dataset_size: int | None = None
    sut_image: str = "mlperf-sut:latest"
    sut_python: str = ""
    sut_pythonpath: tuple[str, ...] = ()
    load_format: str = "auto"
    run_timeout_s: int = 14_400
    server_start_timeout_s: int = 1_800
    retries: int = 1
    retry_delay_s: int = 300
    notify_webhook: str | None = field(default=None, repr=False)   # a secret
    division: str = "open"
    submitter: str | None = None
    system_status: str | None = None
    system_description: str | None = None          # path of a JSON file of hand-written system fields

    def pool(self, node: str) -> str:
        """One pool of one slot per GPU node: two benchmarks never share a GPU."""
        return POOL_PREFIX + node

    @property
    def embedded(self) -> bool:
        return self.profile == "embedded"

    def public(self) -> dict:
        """What may appear in logs, XCom and the report (no URL that could hold a password)."""
        return {"runner": self.runner, "nodes": list(self.nodes), "profile": self.profile,
                "schedule": self.schedule, "artifacts_dir": str(self.artifacts_dir), "sut_image": self.sut_image,
                "load_format": self.load_format, "run_timeout_s": self.run_timeout_s}


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DeploymentError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise DeploymentError(f"{name}={value}: must be at least {minimum}")
    return value


def _choice(env: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise DeploymentError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _optional_choice(env: dict, name: str, choices: tuple[str, ...]) -> str | None:
    return _choice(env, name, choices[0], choices) if env.get(name, "").strip() else None


def count_dataset(path: str) -> int | None:
    """Samples in the data set when the file is readable from here (on Kubernetes it may live on the pods' volume)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return len(data) if isinstance(data, list) else None


def load(env: dict | None = None) -> Deployment:
    """Read the deployment from `env` (default os.environ); raises DeploymentError naming the variable."""
    env = dict(os.environ if env is None else env)
    runner = _choice(env, "MLPERF_RUNNER", "kubernetes", RUNNERS)
    local = runner == "local"
    profile = _choice(env, "MLPERF_PROFILE", "full", PROFILES)
    embedded = profile == "embedded"

    nodes = tuple(n.strip() for n in env.get("MLPERF_NODES", "").split(",") if n.strip())
    nodes = nodes or (("local-0", "local-1") if local else ("gpu-0",))
    for node in nodes:
        if not NODE_NAME.match(node):
            raise DeploymentError(f"MLPERF_NODES: {node!r} is not a node name (lower-case letters, digits, '-', '.')")
    if len(set(nodes)) != len(nodes):
        raise DeploymentError(f"MLPERF_NODES: duplicate node in {','.join(nodes)}")

    schedule = env.get("MLPERF_SCHEDULE", "0 2 * * *").strip()
    if schedule.lower() in ("", "none", "null", "manual"):
        schedule = None

    artifacts = Path(env.get("MLPERF_ARTIFACTS_DIR") or (REPO_ROOT / ".artifacts" if local else "/artifacts"))
    if not artifacts.is_absolute():
        artifacts = REPO_ROOT / artifacts
    model_dir = env.get("MLPERF_MODEL_DIR") or (
        str(REPO_ROOT / ".cache" / "tiny-llama") if local else "/models/Llama-3.1-8B-Instruct")
    dataset = env.get("MLPERF_DATASET") or (
        str(REPO_ROOT / ".cache" / "tiny-cnn" / "cnn_eval.json") if local else "/data/cnn_eval.json")
    sut_python = env.get("MLPERF_SUT_PYTHON") or str(REPO_ROOT / ".venv-sut" / "bin" / "python")
    return Deployment(
        runner=runner,
        nodes=nodes,
        profile=profile,
        schedule=schedule,
        artifacts_dir=artifacts,
        history_url=env.get("MLPERF_HISTORY_URL") or f"sqlite:///{artifacts / 'history.sqlite'}",
        model_dir=model_dir,
        dataset=dataset,
        dataset_size=_int(env, "MLPERF_DATASET_SIZE", 0, 1) or None,
        sut_image=env.get("MLPERF_SUT_IMAGE") or "mlperf-sut:latest",
        sut_python=sut_python,
        sut_pythonpath=tuple(p for p in env.get("MLPERF_SUT_PYTHONPATH", "").split(os.pathsep) if p.strip()),
        load_format=_choice(env, "MLPERF_LOAD_FORMAT", "auto", ("auto", "dummy")),
        run_timeout_s=_int(env, "MLPERF_RUN_TIMEOUT_S", 900 if embedded else 14_400, 1),
        server_start_timeout_s=_int(env, "MLPERF_SERVER_START_TIMEOUT_S", 300 if embedded else 1_800, 1),
        retries=_int(env, "MLPERF_RETRIES", 1),
        retry_delay_s=_int(env, "MLPERF_RETRY_DELAY_S", 300),
        notify_webhook=env.get("MLPERF_NOTIFY_WEBHOOK") or None,
        division=_choice(env, "MLPERF_SUBMISSION_DIVISION", "open", mlperf_rules.DIVISIONS),
        submitter=env.get("MLPERF_SUBMITTER", "").strip() or None,
        system_status=_optional_choice(env, "MLPERF_SYSTEM_STATUS", mlperf_rules.AVAILABILITIES),
        system_description=env.get("MLPERF_SYSTEM_DESCRIPTION", "").strip() or None,
    )


def pools(dep: Deployment) -> dict[str, dict]:
    """The pools this deployment needs, in `airflow pools import` format: one slot per GPU node."""
    return {dep.pool(n): {"slots": 1, "description": f"the GPU(s) of node {n}: one benchmark at a time",
                          "include_deferred": False} for n in dep.nodes}


if __name__ == "__main__":
    # `python -m include.deployment pools > pools.json && airflow pools import pools.json` (docker-compose init)
    import sys

    if sys.argv[1:] != ["pools"]:
        sys.exit("usage: python -m include.deployment pools")
    print(json.dumps(pools(load()), indent=2))
