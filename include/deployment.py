"""Deploy-time configuration: what an operator sets once per installation, from environment variables.

Trigger-time choices (scenarios, sample count, engine limits, ...) are DAG params; what is fixed for an
installation lives here: which runner starts the SUT, which GPU nodes exist (so per-node tasks and pools are
static), where artefacts, weights and the data set are, and the profile that chooses the params' defaults.

This module is the only one that reads the environment (tests/dags/test_deployment.py checks it): `load()` reads
it once into a `Deployment`, which is passed down (the DAG file loads it when parsed, a task or the Benchmarks page
when it runs); nothing writes `os.environ` (`make demo` and `make ui` give their child processes an environment).

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
| MLPERF_LOCAL_GPUS | (none: no pinning) | `node=gpu[:gpu...],...`: each node's CUDA_VISIBLE_DEVICES (local runner on a GPU host) |
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

The kubernetes runner's own (`Deployment.kubernetes`; the image, artefacts root and timeouts above apply to its
pods too):

| variable | default | meaning |
|---|---|---|
| MLPERF_NAMESPACE | mlperf | namespace of the SUT pods and of the coordinated branch's vLLM servers and Services |
| MLPERF_KUBERNETES_CONN_ID | kubernetes_default | the Airflow connection to the cluster |
| MLPERF_IMAGE_PULL_POLICY | IfNotPresent | pull policy of the SUT pods: IfNotPresent, Always or Never |
| MLPERF_SUT_SERVICE_ACCOUNT | mlperf-sut | service account of the SUT pods (deploy/rbac.yaml) |
| MLPERF_NODE_LABEL_KEY | kubernetes.io/hostname | node label whose value is the node's name in MLPERF_NODES (the pods' affinity) |
| MLPERF_MODEL_PVC | mlperf-model | PVC of the weights (read-only in the pods) |
| MLPERF_DATASET_PVC | mlperf-dataset | PVC of the data set (read-only in the pods) |
| MLPERF_ARTIFACTS_PVC | mlperf-artifacts | ReadWriteMany PVC mounted at MLPERF_ARTIFACTS_DIR, in the pods and in Airflow |
| MLPERF_MODEL_MOUNT | /models | where the pods mount the weights' PVC (MLPERF_MODEL_DIR lies below it) |
| MLPERF_DATASET_MOUNT | /data | where the pods mount the data set's PVC (MLPERF_DATASET lies below it) |
| MLPERF_SHM_SIZE | 16Gi | size limit of the pods' memory-backed /dev/shm (a Kubernetes quantity) |
| MLPERF_POD_STARTUP_TIMEOUT_S | 1200 | scheduling, image pull and start of a SUT pod |
| MLPERF_SERVER_LIFETIME_S | 86400 | deadline of a vLLM server pod whose teardown never ran |

Read on their own, where they are used (a wrong MLPERF_* variable must not stop them):

| variable | default | meaning |
|---|---|---|
| NLTK_DATA | <repo>/.cache/nltk_data | NLTK's own; its first folder receives the sentence tables ROUGE scoring needs (`nltk_data_dir()`) |
| MLPERF_UI_PORT | 8080 | the port `make ui` serves the Airflow UI on (`ui_port()`) |
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from include import mlperf_rules


REPO_ROOT = Path(__file__).resolve().parents[1]
# The SUT's files the Airflow side reads (result.json's schema, the LoadGen keys, the engine arguments and presets):
# the checkout's, and in docker-compose the same path under /opt/airflow.
SUT_PACKAGE = REPO_ROOT / "sut_image" / "mlperf_sut"
HISTORY_FILE = "history.sqlite"       # the default history store, in the artefacts root
NLTK_DATA = REPO_ROOT / ".cache" / "nltk_data"    # where the Makefile points NLTK_DATA; the default when unset
UI_PORT = 8080
RUNNERS = ("kubernetes", "local")
PROFILES = ("full", "embedded")
POOL_PREFIX = "mlperf_gpu_"
LOCAL_GPUS_ENV = "MLPERF_LOCAL_GPUS"
NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")   # a Kubernetes node name (RFC 1123)
# Kubernetes' rules for the names the kubernetes runner is given: a namespace is an RFC 1123 label, a PVC or a
# service account an RFC 1123 subdomain; a label key is [prefix/]name; a size is a resource quantity.
NAMESPACE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
OBJECT_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")


class DeploymentError(ValueError):
    """A deploy-time environment variable is wrong; the message names it."""


@dataclass(frozen=True)
class KubernetesSettings:
    """The kubernetes runner's own settings (the table above); the defaults are those of deploy/."""

    namespace: str = "mlperf"
    conn_id: str = "kubernetes_default"
    image_pull_policy: str = "IfNotPresent"
    service_account: str = "mlperf-sut"
    node_label_key: str = "kubernetes.io/hostname"
    model_pvc: str = "mlperf-model"
    dataset_pvc: str = "mlperf-dataset"
    artifacts_pvc: str = "mlperf-artifacts"
    model_mount: str = "/models"
    dataset_mount: str = "/data"
    shm_size: str = "16Gi"
    startup_timeout_s: int = 1_200
    server_lifetime_s: int = 24 * 3600


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
    local_gpus: dict[str, str] = field(default_factory=dict, hash=False)   # node -> CUDA_VISIBLE_DEVICES
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
    kubernetes: KubernetesSettings = KubernetesSettings()

    def pool(self, node: str) -> str:
        """One pool of one slot per GPU node: two benchmarks never share a GPU."""
        return POOL_PREFIX + node

    @property
    def embedded(self) -> bool:
        return self.profile == "embedded"

    @property
    def default_history_file(self) -> Path | None:
        """The SQLite file of the history when MLPERF_HISTORY_URL is unset (no run may have created it yet)."""
        path = self.artifacts_dir / HISTORY_FILE
        return path if self.history_url == _sqlite_url(path) else None

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


def _matching(env: dict, name: str, default: str, pattern: re.Pattern, what: str) -> str:
    value = env.get(name, "").strip() or default
    if not pattern.match(value):
        raise DeploymentError(f"{name}={value!r}: expected {what}; unset, it is {default}")
    return value


def _absolute(env: dict, name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not value.startswith("/"):
        raise DeploymentError(f"{name}={value!r}: expected an absolute path in the pods; unset, it is {default}")
    return value


def _environ(env: dict | None) -> dict:
    return dict(os.environ if env is None else env)


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _gpu_map(text: str) -> dict[str, str]:
    """MLPERF_LOCAL_GPUS, `node=dev[:dev...],...` -> {node: CUDA_VISIBLE_DEVICES value}; {} when empty."""
    out: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        node, sep, devices = item.partition("=")
        ids = devices.split(":")
        if not sep or not node.strip() or not all(d.strip().isdigit() for d in ids):
            raise DeploymentError(f"{LOCAL_GPUS_ENV}: {item!r} is not NODE=GPU[:GPU...] (e.g. h200-0=0,h200-1=1)")
        if node.strip() in out:
            raise DeploymentError(f"{LOCAL_GPUS_ENV}: node {node.strip()!r} given twice")
        out[node.strip()] = ",".join(d.strip() for d in ids)
    return out


def _kubernetes(env: dict) -> KubernetesSettings:
    d, pvc = KubernetesSettings(), "a PVC name (lower-case letters, digits, '-' and '.')"
    return KubernetesSettings(
        namespace=_matching(env, "MLPERF_NAMESPACE", d.namespace, NAMESPACE_NAME,
                            "a namespace name (lower-case letters, digits and '-', at most 63 characters)"),
        conn_id=env.get("MLPERF_KUBERNETES_CONN_ID", "").strip() or d.conn_id,
        image_pull_policy=_choice(env, "MLPERF_IMAGE_PULL_POLICY", d.image_pull_policy, PULL_POLICIES),
        service_account=_matching(env, "MLPERF_SUT_SERVICE_ACCOUNT", d.service_account, OBJECT_NAME,
                                  "a service account name (lower-case letters, digits, '-' and '.')"),
        node_label_key=_matching(env, "MLPERF_NODE_LABEL_KEY", d.node_label_key, LABEL_KEY,
                                 "a label key ([prefix/]name, the name at most 63 characters)"),
        model_pvc=_matching(env, "MLPERF_MODEL_PVC", d.model_pvc, OBJECT_NAME, pvc),
        dataset_pvc=_matching(env, "MLPERF_DATASET_PVC", d.dataset_pvc, OBJECT_NAME, pvc),
        artifacts_pvc=_matching(env, "MLPERF_ARTIFACTS_PVC", d.artifacts_pvc, OBJECT_NAME, pvc),
        model_mount=_absolute(env, "MLPERF_MODEL_MOUNT", d.model_mount),
        dataset_mount=_absolute(env, "MLPERF_DATASET_MOUNT", d.dataset_mount),
        shm_size=_matching(env, "MLPERF_SHM_SIZE", d.shm_size, QUANTITY, "a Kubernetes quantity such as 16Gi"),
        startup_timeout_s=_int(env, "MLPERF_POD_STARTUP_TIMEOUT_S", d.startup_timeout_s, 1),
        server_lifetime_s=_int(env, "MLPERF_SERVER_LIFETIME_S", d.server_lifetime_s, 1),
    )


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
    env = _environ(env)
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
        history_url=env.get("MLPERF_HISTORY_URL") or _sqlite_url(artifacts / HISTORY_FILE),
        model_dir=model_dir,
        dataset=dataset,
        dataset_size=_int(env, "MLPERF_DATASET_SIZE", 0, 1) or None,
        sut_image=env.get("MLPERF_SUT_IMAGE") or "mlperf-sut:latest",
        sut_python=sut_python,
        sut_pythonpath=tuple(p for p in env.get("MLPERF_SUT_PYTHONPATH", "").split(os.pathsep) if p.strip()),
        local_gpus=_gpu_map(env.get(LOCAL_GPUS_ENV, "")),
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
        kubernetes=_kubernetes(env),
    )


def nltk_data_dir(env: dict | None = None) -> Path:
    """The folder NLTK reads its data from: NLTK_DATA's first entry, else <repo>/.cache/nltk_data."""
    first = _environ(env).get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(first) if first else NLTK_DATA


def port_number(value: str, source: str) -> int:
    """A TCP port number; DeploymentError naming `source` (a variable or an option) otherwise."""
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise DeploymentError(f"{source}={value!r} is not a port number (1-65535)")
    return port


def ui_port(env: dict | None = None) -> int:
    """MLPERF_UI_PORT: the port `make ui` serves on."""
    return port_number(_environ(env).get("MLPERF_UI_PORT", str(UI_PORT)), "MLPERF_UI_PORT")


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
