"""docker-compose.yaml is accepted by Docker Compose and has the shape of Airflow's official one.

Runs `docker compose config` (the v2 plugin) or, where only Debian's `docker-compose` 1.29 package exists,
`docker-compose config`; both interpolate the environment and validate against the Compose specification.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from include.deployment import SUT_PACKAGE

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
REQUIRED_ENV = {"AIRFLOW_JWT_SECRET": "test-signing-key", "_AIRFLOW_WWW_USER_PASSWORD": "test-password"}
AIRFLOW_SERVICES = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


COMPOSE = _compose_command()
NO_COMPOSE = ("neither `docker compose` nor `docker-compose` is installed: `apt-get install docker-compose` "
              "(Debian 12: docker-compose 1.29.2) or Docker's compose v2 plugin")


def _config(env_overrides: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLPERF_", "AIRFLOW", "_AIRFLOW", "KUBE", "POSTGRES_"))}
    env.update(env_overrides)
    return subprocess.run([*COMPOSE, "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), "config", *extra],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def resolved() -> dict:
    if COMPOSE is None:
        pytest.fail(NO_COMPOSE)
    proc = _config(REQUIRED_ENV)
    assert proc.returncode == 0, f"{' '.join(COMPOSE)} config rejected docker-compose.yaml:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


def test_compose_refuses_to_start_without_the_secrets() -> None:
    if COMPOSE is None:
        pytest.fail(NO_COMPOSE)
    for missing in REQUIRED_ENV:
        proc = _config({k: v for k, v in REQUIRED_ENV.items() if k != missing}, "-q")
        assert proc.returncode != 0 and missing in proc.stderr, f"compose accepted a missing {missing}"


def test_services_follow_the_official_layout(resolved: dict) -> None:
    services = resolved["services"]
    assert set(services) == {"postgres", "airflow-init", *AIRFLOW_SERVICES}
    for name, command in AIRFLOW_SERVICES.items():
        service = services[name]
        got = service["command"] if isinstance(service["command"], str) else " ".join(service["command"])
        assert got == command
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
        assert service["build"]["dockerfile"].endswith("docker/airflow.Dockerfile")
    assert services["postgres"]["healthcheck"]["test"]
    assert services["airflow-scheduler"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow pools set" in init and "PASSWORDS_FILE" in init


def test_airflow_environment_defaults(resolved: dict) -> None:
    env = resolved["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["MLPERF_RUNNER"] == "kubernetes"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
    assert env["MLPERF_HISTORY_URL"].endswith("@postgres/mlperf_history")
    conn = json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    assert conn["conn_type"] == "kubernetes" and conn["extra"]["kube_config_path"] == "/home/airflow/.kube/config"
    # The admin password reaches only the one-shot init service.
    assert "_AIRFLOW_WWW_USER_PASSWORD" not in env
    assert resolved["services"]["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_PASSWORD"] == "test-password"


def test_project_folders_schema_and_kubeconfig_are_mounted(resolved: dict) -> None:
    mounts = resolved["services"]["airflow-scheduler"]["volumes"]
    targets = {(m["target"] if isinstance(m, dict) else m.split(":")[1]) for m in mounts}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include", "/home/airflow/.kube/config",
            "/artifacts"} <= targets
    # Every contract file the DAG reads from the SUT's package (the plan loads the engine presets and arguments when
    # the DAG is parsed) is inside a mount, at the path include/deployment.py's SUT_PACKAGE has in the image.
    contract = ["result.schema.json", "user_conf.schema.json", "engine_args.schema.json", "engine_presets.json"]
    for name in contract:
        assert (SUT_PACKAGE / name).is_file(), name
        inside = f"/opt/airflow/sut_image/mlperf_sut/{name}"
        assert any(inside == t or inside.startswith(t.rstrip("/") + "/") for t in targets), f"{name} is not mounted"


def test_environment_overrides_reach_the_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    if COMPOSE is None:
        pytest.fail(NO_COMPOSE)
    proc = _config({**REQUIRED_ENV, "MLPERF_NODES": "h200-a,h200-b", "MLPERF_NAMESPACE": "bench",
                    "MLPERF_ARTIFACTS_DIR": "/mnt/mlperf", "MLPERF_RUNNER": "local"})
    assert proc.returncode == 0, proc.stderr
    scheduler = yaml.safe_load(proc.stdout)["services"]["airflow-scheduler"]
    env = scheduler["environment"]
    assert env["MLPERF_NODES"] == "h200-a,h200-b" and env["MLPERF_RUNNER"] == "local"
    assert json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])["extra"]["namespace"] == "bench"
    assert any((m["target"] if isinstance(m, dict) else m.split(":")[1]) == "/mnt/mlperf"
               for m in scheduler["volumes"])


def test_every_variable_is_documented_in_the_header() -> None:
    text = COMPOSE_FILE.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))   # $${x} is the shell's, not compose's
    undocumented = sorted(v for v in used if not re.search(rf"^#\s+{re.escape(v)}\s", header, re.MULTILINE))
    assert not undocumented, f"docker-compose.yaml header does not document: {undocumented}"


def test_dockerfile_installs_the_pinned_requirements() -> None:
    dockerfile = (REPO / "docker" / "airflow.Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "constraints.txt" in dockerfile
    assert re.search(r"^FROM apache/airflow:.*\$\{AIRFLOW_VERSION\}", dockerfile, re.MULTILINE)
    assert re.search(r"^ARG AIRFLOW_VERSION=3\.3\.2$", dockerfile, re.MULTILINE)
    for name in ("requirements.txt", "constraints.txt"):
        if not (REPO / name).exists():
            pytest.fail(f"docker/airflow.Dockerfile copies {name}, which is missing at the repository root")
