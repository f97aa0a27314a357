"""The SUT pod from the image sut_image/Dockerfile builds (CPU flavour), on the real local cluster.

Not part of `make test-cluster` (nor CI): the image is 4.8 GB, built with Debian's docker.io engine, and importing it
into both nodes takes minutes and ~10 GB of disk on every cold run, for packages the cluster tests already run from
the bound SUT environment (deploy/local-cluster/README.md says why). `make test-cluster-image` builds it, imports
it and runs this.
"""
from __future__ import annotations

import json
import uuid

import pytest

from tests.cluster.local import NODES
from tests.cluster.test_runner_pods import PodWatch, _execute, _nothing_left, _sut_task
from tests.kubernetes.context import task_context

pytestmark = pytest.mark.slow

IMAGE = "docker.io/library/mlperf-sut:cpu"


def test_the_dockerfiles_cpu_image_runs_the_sut_in_a_pod(local_cluster, volumes, airflow_connection) -> None:
    images = local_cluster.kubectl("get", "node", NODES[0], "-o", "jsonpath={.status.images[*].names}").stdout
    assert IMAGE in images, f"{IMAGE} is not on {NODES[0]}: run deploy/local-cluster/sut-image-docker.sh --import"
    run_id = f"cluster-image-{uuid.uuid4().hex[:8]}"
    with PodWatch(local_cluster, run_id) as watch:
        _execute(_sut_task("image", NODES[0], run_id, retries=0, image=IMAGE), task_context("image", run_id=run_id))
    assert list(watch.nodes.values()) == [NODES[0]], watch.nodes
    run_dir = volumes["artifacts"] / run_id / "single" / NODES[0] / "Offline/performance"
    result = json.loads((run_dir / "result.json").read_text())
    # the image's own environment ran it (the node binds the host's SUT venv under /opt/mlperf-sut; this image's is
    # /opt/venv, Debian's Python 3.11.2, not the host's)
    assert result["status"] == "completed" and result["versions"]["python"] == "3.11.2", result["versions"]
    assert result["host"]["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert "Result is : VALID" in (run_dir / "mlperf_log_summary.txt").read_text()
    _nothing_left(local_cluster, run_id)
