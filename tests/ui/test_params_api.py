"""Bad trigger input through the real REST API: `airflow api-server` with this repository's plugins and the real
DAG, POST /api/v2/dags/mlperf_llama31_8b/dagRuns as a user would. Each bad conf is a 400 naming the key (and the
nearest valid name, or the bound and its reason) and creates no DAG run; a good conf creates one. Before any of
that, the guard asks who is calling (Airflow's 401/403, no byte of body read), caps the body (413) and lets no
error answer quote more than an excerpt of the input.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from include.planning.trigger_guard import MAX_BODY_BYTES
from tests.ui.conftest import PASSWORDS, REPO, airflow_bin, raw_post, running_api_server

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
    for key in ("MLPERF_SCHEDULE", "MLPERF_DATASET_SIZE"):
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
    ({"user_conf_overrides": {"min_duration": "x" * 500_000}}, ["user_conf_overrides", "is not of type 'integer'"]),
    # a rate LoadGen cannot schedule in memory, with the figure
    ({"server_target_qps": 1e12, "user_conf_overrides": {}},
     ["server_target_qps: Server: server_target_qps 1e+12/s x min_duration 600 s = 600,000,000,000,000 queries",
      "~276,000,000.0 GB at 460 bytes each", "the limit is 10,000,000"]),
    ({"server_target_qps": 1e12}, ["server_target_qps", "1000000000000.0 is greater than the maximum of 15000"]),
    ({"model_path": "/models/a\n/b"}, ["model_path", "does not match"]),
    # Airflow's own refusal quoted a value twice in full (a 20 MB model_path came back in 42 MB): an excerpt now
    ({"model_path": "/models/a\n/b" + "x" * 900_000}, ["model_path", "is too long", "characters)"]),
    ({"x" * 900_000: 1}, ["xxxxxxxxxx...: not a param of this DAG"]),
])
def test_bad_conf_is_refused_before_a_run_exists(api, conf, expected):
    before = _runs(api)
    response = api.post(TRIGGER, json={"logical_date": None, "conf": conf})
    assert response.status_code == 400, response.text[:2000]
    detail = response.json()["detail"]
    for text in expected:
        assert text in detail, detail[:3000]
    assert len(response.content) < 4_000, response.text[:3000]      # no echo of the input beyond an excerpt
    assert _runs(api) == before


def test_good_conf_creates_a_run(api):
    before = _runs(api)
    response = api.post(TRIGGER, json={"logical_date": None,
                                       "conf": {"total_sample_count": 8, "user_conf_overrides": {"min_duration": 0}}})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["state"] == "queued" and run["conf"]["total_sample_count"] == 8
    assert _runs(api) == before + 1


# -- who may send a body, and how much -------------------------------------------------------------------------

HUNDRED_MB = b'{"logical_date": null, "conf": {"foo": "' + b"x" * 100_000_000 + b'"}}'


def _base(api) -> str:
    return str(api.base_url).rstrip("/")


def _token(api, user: str) -> str:
    response = httpx.post(f"{_base(api)}/auth/token", json={"username": user, "password": PASSWORDS[user]},
                          timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_anonymous_body_is_not_read(api, chunked):
    """Anonymous 100 MB: read for 11-16 s and answered 400 with the param list before; now Airflow's own 401 at
    once, from the headers, with no word about the DAG's params."""
    before = _runs(api)
    answer = raw_post(_base(api), TRIGGER, {}, HUNDRED_MB, chunked=chunked)
    assert answer.status == 401 and answer.json() == {"detail": "Not authenticated"}, answer.body[:500]
    assert answer.sent < 20_000_000 and answer.seconds < 5, (answer.sent, answer.seconds)
    assert _runs(api) == before


def test_forged_token_and_a_user_who_may_not_trigger_get_airflows_answer(api):
    body = b'{"conf": {"foo": 1}}'
    forged = raw_post(_base(api), TRIGGER, {"Authorization": "Bearer not.a.jwt"}, body)
    assert (forged.status, forged.json()) == (403, {"detail": "Invalid JWT token"})
    cookie = raw_post(_base(api), TRIGGER, {"Cookie": "_token=not.a.jwt"}, body)
    assert (cookie.status, cookie.json()) == (403, {"detail": "Invalid JWT token"})
    viewer = raw_post(_base(api), TRIGGER, {"Authorization": f"Bearer {_token(api, 'viewer')}"},
                      HUNDRED_MB)
    assert (viewer.status, viewer.json()) == (403, {"detail": "Forbidden"})      # viewers may not trigger
    assert viewer.sent < 20_000_000


def test_the_ui_cookie_is_a_login_too(api):
    """The Airflow UI's trigger form sends the `_token` cookie, no Authorization header: it gets the guard's check."""
    token = api.headers["Authorization"].removeprefix("Bearer ")
    answer = raw_post(_base(api), TRIGGER, {"Cookie": f"_token={token}"},
                      b'{"conf": {"total_samples_count": 5}}')
    assert answer.status == 400 and "did you mean 'total_sample_count'?" in answer.json()["detail"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_cap_is_413_before_it_is_read(api, chunked):
    """A logged-in 20 MB model_path was read, validated and echoed back in a 42 MB answer: now 413, unread."""
    before = _runs(api)
    body = b'{"logical_date": null, "conf": {"model_path": "/m/' + b"x" * 20_000_000 + b'"}}'
    answer = raw_post(_base(api), TRIGGER, {"Authorization": api.headers["Authorization"]},
                      body, chunked=chunked)
    assert answer.status == 413, answer.body[:500]
    assert answer.json() == {"detail": f"the request body is larger than {MAX_BODY_BYTES:,} bytes"}
    assert answer.sent < (10_000_000 if chunked else 20_000_000), answer.sent
    assert _runs(api) == before
    # just under the cap passes the door (and Airflow's refusal of the value is an excerpt)
    near = api.post(TRIGGER, json={"logical_date": None, "conf": {"model_path": "/m/" + "x" * (MAX_BODY_BYTES - 100)}})
    assert near.status_code == 400 and len(near.content) < 4_000, near.text[:2000]


def test_airflows_validation_errors_quote_an_excerpt(api):
    """FastAPI's 422 quotes the input (`input`) in full: cut to an excerpt; its fields and message stay."""
    response = api.post(TRIGGER, json={"logical_date": "x" * 500_000, "conf": {}})
    assert response.status_code == 422 and len(response.content) < 2_000, response.text[:2000]
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "logical_date"] and error["input"].endswith("... (500,000 characters)")
