"""deploy/: the cluster-side manifests are valid Kubernetes (1.28 and newest, strict) and agree with the runner."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.deployment import KubernetesSettings
from tests.kubernetes.manifests import validate_strict

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _load() -> list[dict]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


DOCS = _load()


def _one(kind: str, name: str) -> dict:
    (doc,) = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid(doc: dict) -> None:
    validate_strict(doc)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == KubernetesSettings().namespace


def test_kustomization_lists_every_standing_manifest() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    # The download Job is applied on purpose, once, after the hf-token Secret exists.
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "download-job.yaml"}


def test_volumes_match_the_runner_defaults() -> None:
    s = KubernetesSettings()
    for name in (s.model_pvc, s.dataset_pvc, s.artifacts_pvc):
        assert _one("PersistentVolumeClaim", name)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_airflow_role_allows_exactly_what_the_runner_does() -> None:
    rules = {(r["resources"][0]): set(r["verbs"]) for r in _one("Role", "mlperf-airflow")["rules"]}
    assert {"create", "get", "list", "delete", "patch"} <= rules["pods"]
    assert rules["pods/log"] == {"get"}
    assert {"create", "get", "list", "delete"} <= rules["services"]
    assert not any("*" in verbs for verbs in rules.values())
    assert "secrets" not in rules
    binding = _one("RoleBinding", "mlperf-airflow")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow", "namespace": "mlperf"}]
    sut = _one("ServiceAccount", KubernetesSettings().service_account)
    assert sut["automountServiceAccountToken"] is False


def test_download_job_fills_the_paths_the_runs_read_and_takes_the_token_from_a_secret() -> None:
    job = _one("Job", "mlperf-download")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    assert all("value" not in e or not e["value"].startswith("hf_") for e in container["env"])
    s = KubernetesSettings()
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert claims == {"model": s.model_pvc, "dataset": s.dataset_pvc}
    assert mounts == {"model": s.model_mount, "dataset": s.dataset_mount}
    # include/deployment.py's defaults: MLPERF_MODEL_DIR and MLPERF_DATASET lie in these volumes.
    assert env["MODEL_DIR"]["value"] == "/models/Llama-3.1-8B-Instruct"
    assert env["DATASET_DIR"]["value"] + "/cnn_eval.json" == "/data/cnn_eval.json"
    assert pod["automountServiceAccountToken"] is False
