"""Rendering and schema validation helpers shared by the Kubernetes tests (no cluster involved)."""
from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
from kubernetes.client import ApiClient

# The oldest Kubernetes the deployment supports and the newest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.28.0", kubernetes_validate.utils.latest_version()]
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def to_dict(obj: Any) -> dict[str, Any]:
    """What the client would send: the model serialised exactly as the API server receives it."""
    return ApiClient().sanitize_for_serialization(obj)


def validate_strict(manifest: dict[str, Any]) -> None:
    """Strict (no unknown fields) validation against every schema in K8S_VERSIONS; raises on the first error."""
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = manifest.get("metadata", {}).get("name")
            raise AssertionError(f"{manifest.get('kind')} {name} rejected by Kubernetes {version} schema: "
                                 f"{exc.message} at {list(exc.path)}") from exc


def render_pod(task: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The pod a KubernetesPodOperator would create, rendered the way execute() renders it."""
    task.render_template_fields(context)
    return to_dict(task.build_pod_request_obj(context))


def assert_labels_valid(manifest: dict[str, Any]) -> None:
    for key, value in (manifest["metadata"].get("labels") or {}).items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), f"label {key}={value!r} is not a valid label value"
