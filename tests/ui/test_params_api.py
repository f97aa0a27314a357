"""Bad trigger input through the real REST API: `airflow api-server` with this repository's plugins and the real
DAG, POST /api/v2/dags/mlperf_llama31_8b/dagRuns as a user would. Each bad conf is a 400 naming the key (and the
nearest valid name, or the bound and its reason) and creates no DAG run; a good conf creates one.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from tests.ui.conftest import PASSWORDS, REPO, airflow_bin, running_api_server

pytestmark = pytest.mark.slow

DAG_ID = "mlperf_llama31_8b"
TRIGGER = f"/api/v2/dags/{DAG_ID}/dagRuns"


@pytest.fixture(scope="module")
def api(airflow_home, tmp_path_factory):
    """A real api-server whose DAG folder holds the benchmark DAG (embedded profile, local runner)."""
    work = tmp_path_factory.mktemp("params-api")
    dags = work / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / f"{DAG_ID}.py", dags)
    env = {**os.environ, **airflow_home["env"], "PYTHONPATH": airflow_home["pythonpath"],
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "MLPERF_RUNNER": "local", "MLPERF_NODES": "local-0,local-1",
           "MLPERF_PROFILE": "embedded", "MLPERF_ARTIFACTS_DIR": str(work / "artifacts"),
           "MLPERF_HISTORY_URL": f"sqlite:///{work / 'history.sqlite'}",
           "MLPERF_MODEL_DIR": str(REPO / ".cache/tiny-llama"),
           "MLPERF_DATASET": str(REPO / ".cache/tiny-cnn/cnn_eval.json")}
    for key in ("MLPERF_SCHEDULE", "MLPERF_USER_CONF_SCHEMA", "MLPERF_DATASET_SIZE"):
        env.pop(key, None)
    done = subprocess.run([airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with running_api_server(env, work / "api-server.log") as base:
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": PASSWORDS["admin"]},
                           timeout=30)
        assert token.status_code == 201, token.text
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                              timeout=60)
        dag = client.get(f"/api/v2/dags/{DAG_ID}")
        assert dag.status_code == 200, f"{dag.text}\n{done.stdout[-2000:]}"
        yield client
        client.close()


def _runs(api) -> int:
    response = api.get(TRIGGER)
    assert response.status_code == 200, response.text
    return response.json()["total_entries"]


@pytest.mark.parametrize("conf, expected", [
    # unknown keys: Airflow alone would run the defaults (13,368 samples on the full profile), nobody told
    ({"total_samples_count": 5},
     ["total_samples_count: not a param of this DAG", "did you mean 'total_sample_count'?"]),
    ({"foo": 1}, ["foo: not a param of this DAG", "params: scenarios, mode,"]),
    ({"user_conf_overrides": {"min_durration": 0}},
     ["user_conf_overrides: 'min_durration' is not a LoadGen user.conf key; did you mean 'min_duration'?"]),
    # values, checked with the bounds of the SUT's user_conf.schema.json
    ({"user_conf_overrides": {"min_duration": -100}}, ["user_conf_overrides", "-100 is less than the minimum of 0"]),
    ({"user_conf_overrides": {"min_query_count": 1e300}},
     ["user_conf_overrides", "is greater than the maximum of 10000000"]),
    ({"user_conf_overrides": {"min_duration": "0\n*.Offline.target_qps = 1"}},
     ["user_conf_overrides", "is not of type 'integer'"]),
    ({"user_conf_overrides": {"min_duration": "x" * 5_000_000}}, ["user_conf_overrides", "is not of type 'integer'"]),
    # a rate LoadGen cannot schedule in memory, with the figure
    ({"server_target_qps": 1e12, "user_conf_overrides": {}},
     ["server_target_qps: Server: server_target_qps 1e+12/s x min_duration 600 s = 600,000,000,000,000 queries",
      "~276,000,000.0 GB at 460 bytes each", "the limit is 10,000,000"]),
    ({"server_target_qps": 1e12}, ["server_target_qps", "1000000000000.0 is greater than the maximum of 15000"]),
    ({"model_path": "/models/a\n/b"}, ["model_path", "does not match"]),
])
def test_bad_conf_is_refused_before_a_run_exists(api, conf, expected):
    before = _runs(api)
    response = api.post(TRIGGER, json={"logical_date": None, "conf": conf})
    assert response.status_code == 400, response.text[:2000]
    detail = response.json()["detail"]
    for text in expected:
        assert text in detail, detail[:3000]
    assert _runs(api) == before


def test_good_conf_creates_a_run(api):
    before = _runs(api)
    response = api.post(TRIGGER, json={"logical_date": None,
                                       "conf": {"total_sample_count": 8, "user_conf_overrides": {"min_duration": 0}}})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["state"] == "queued" and run["conf"]["total_sample_count"] == 8
    assert _runs(api) == before + 1
