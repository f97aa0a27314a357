"""The Benchmarks plugin's endpoints on real history databases (SQLite and PostgreSQL) with real Airflow tokens."""
from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.analysis.analysis_factory import T0
from tests.ui.seed import SQLI, XSS

PAGES = ["/", "/compare?a=x&b=y", "/runs/x", "/runs/x/report/"]
JSON_ENDPOINTS = ["/api/runs", "/api/runs/x", "/api/results", "/api/regressions", "/api/figures", "/api/filters",
                  "/api/compare?a=x&b=y"]


def enc(run_id: str) -> str:
    return quote(run_id, safe="")


# -- authentication ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", JSON_ENDPOINTS + ["/static/plotly.min.js"])
def test_anonymous_json_and_static_get_401(client, path, monkeypatch, tmp_path):
    monkeypatch.setenv("MLPERF_HISTORY_URL", f"sqlite:///{tmp_path / 'h.sqlite'}")
    response = client.get(path)
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_browser_is_redirected_to_login(client, path):
    response = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/auth/login?next=")


def test_forged_token_is_refused(client):
    response = client.get("/api/runs", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code in (401, 403)
    client.cookies.set("_token", "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln")
    forged = client.get("/api/runs")
    assert forged.status_code in (401, 403)


def test_token_cookie_as_set_by_the_airflow_ui_is_accepted(client, viewer_token, seeded):
    client.cookies.set("_token", viewer_token)
    assert client.get("/api/runs").status_code == 200
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 200


# -- pages and JSON with data ------------------------------------------------------------------------------------

def test_index_renders_charts_runs_and_escapes_everything(authed, seeded):
    response = authed.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    # Offline · H200: tokens/s, TTFT p99, TPOT p99, ROUGE-L; Server · H200: the three performance charts
    assert page.count('class="bm-chart"') == 7
    assert "/static/plotly.min.js" in page and "cdn" not in page.lower()
    for run_id in seeded.run_ids:
        assert html.escape(run_id) in page or html.escape(run_id, quote=False) in page
    # The hostile run id and node name appear only as text, never as markup.
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Regressions" in page and "throughput 14% below" in page
    assert "INVALID" in page
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_trends_are_series_of_equal_settings_with_verdicts_and_published_references(authed, seeded):
    groups = {(g["scenario"], g["accelerator"]): g for g in authed.get("/api/figures").json()["groups"]}
    assert set(groups) == {("Offline", "H200"), ("Server", "H200")}
    offline = groups[("Offline", "H200")]
    assert [f["metric"] for f in offline["figures"]] == ["tokens_per_second", "ttft_p99_ns", "tpot_p99_ns", "rougeL"]
    node_a = [s for s in offline["series"] if s["node"] == "node-a" and s["mode"] == "performance"]
    assert [s["points"] for s in node_a] == [4, 3]                   # bf16 days 0-3, FP8 days 4-6: two series
    assert "FP8 weights + FP8 KV" in node_a[1]["settings"] and "quantization: None -> fp8" in node_a[1]["changed"]
    tps = offline["figures"][0]["data"]
    implausible = [t for t in tps if t.get("meta") == "implausible"]
    assert [t["customdata"] for t in implausible] == [[seeded.implausible_run]]
    published = [t for t in tps if t.get("meta") == "published"]
    assert published and all("H200" in t["name"] and "tokens/s per GPU" in t["name"] for t in published)
    server = groups[("Server", "H200")]["figures"][0]["data"]
    invalid = [t for t in server if t.get("meta") == "invalid"]
    assert [t["customdata"] for t in invalid] == [[seeded.invalid_run]]
    [node_b] = [t for t in server if t.get("mode") == "lines+markers" and t["name"].endswith("node-b")]
    assert seeded.invalid_run not in node_b["customdata"]           # never joined by the line as a normal point
    regression = next(t for t in tps if t["name"] == "regression detected")
    assert len(regression["x"]) == 1 and "run: " + seeded.regression_run in regression["text"][0]
    hover = next(t for t in tps if t.get("mode") == "lines+markers")["text"][0]
    assert "run: " in hover and "vLLM 0.26.0" in hover and "verdict: VALID" in hover
    failed = [t for t in tps if t.get("meta") == "failed"]
    assert len(failed) == 1 and len(failed[0]["customdata"]) == 1   # the missing SUT run, on its date


def test_filters_narrow_results_and_dates_are_inclusive(authed, seeded):
    rows = authed.get("/api/results", params={"scenario": "Server", "node": "node-b"}).json()["results"]
    assert {(r["scenario"], r["node"]) for r in rows} == {("Server", "node-b")}
    assert len(rows) == 7
    rows = authed.get("/api/results", params={"since": "2026-11-03", "until": "2026-11-04"}).json()["results"]
    assert {r["run_id"] for r in rows} == {seeded.run_ids[2], seeded.run_ids[3]}
    branch = authed.get("/api/results", params={"branch": "distributed"}).json()["results"]
    assert {r["node"] for r in branch} == {"node-a+node-b"}


@pytest.mark.parametrize("hostile", [SQLI, XSS, "Offline' OR '1'='1", "Offline; DROP TABLE benchmark_runs; --"])
def test_injection_strings_in_filters_match_nothing_and_are_escaped(authed, seeded, hostile):
    rows = authed.get("/api/results", params={"scenario": hostile}).json()["results"]
    assert rows == []
    page = authed.get("/", params={"scenario": hostile, "branch": hostile}, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    # The history is intact afterwards.
    assert len(authed.get("/api/runs").json()["runs"]) == len(seeded.run_ids)


def test_sqli_node_name_is_one_node_not_a_predicate(authed, seeded):
    rows = authed.get("/api/results", params={"node": SQLI}).json()["results"]
    assert [r["status"] for r in rows] == ["missing"]


@pytest.mark.parametrize("value", ["2026-13-01", "yesterday", "2026-11-01' OR 1=1 --", "2026-11-01T00:00"])
def test_bad_dates_are_refused_plainly(authed, seeded, value):
    response = authed.get("/api/results", params={"since": value})
    assert response.status_code == 400
    assert response.json() == {"detail": "'since' must be a date as YYYY-MM-DD"}
    page = authed.get("/", params={"since": value}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "must be a date" in page.text and "Traceback" not in page.text


def test_runs_table_and_run_json(authed, seeded):
    runs = authed.get("/api/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == list(reversed(seeded.run_ids))
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[seeded.invalid_run]["state"] == "INVALID"
    assert by_id[seeded.run_ids[3]]["state"] == "FAILED"
    detail = authed.get(f"/api/runs/{enc(seeded.latest)}").json()
    assert detail["run"]["run_id"] == seeded.latest
    assert len(detail["regressions"]) == 1 and detail["scaling"][0]["scenario"] == "Offline"
    assert detail["headline"]["tokens_per_second"] == pytest.approx(9830 * 1.0, rel=0.05)
    assert "vllm" in detail["headline"]["versions"] and detail["headline"]["config_hashes"]
    xss = authed.get(f"/api/runs/{enc(seeded.xss_run)}")
    assert xss.status_code == 200 and xss.json()["run"]["run_id"] == XSS.join(["manual__", ""])
    assert authed.get(f"/api/runs/{enc(SQLI)}").status_code == 404


def _text(fragment: str) -> str:
    """What a person reads in an HTML fragment: tags dropped, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_page_tells_each_recorded_run_the_verdict_its_report_and_notification_tell(authed, artifacts, tmp_path,
                                                                                      monkeypatch):
    """Runs recorded by the pipeline's own steps (analyse against the history, report, record): the run page, the
    run table and the latest-run card say the report's verdict in the report's words, coloured as the report colours
    it, and the notification says the same words."""
    from include import pipeline
    from include.reporting import notify
    from tests.analysis.analysis_factory import make_record

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    monkeypatch.setenv("MLPERF_HISTORY_URL", url)
    runs = {f"earlier-{day}": [dict(node="gpu-a", tokens_per_second=tps)] for day, tps in
            enumerate((5019.0, 4990.0, 5040.0))}
    runs.update({
        "regressed": [dict(node="gpu-a", tokens_per_second=4300.0)],
        "invalid": [dict(node="gpu-a", valid=False, invalid_reasons=["min duration not satisfied"])],
        "failed": [dict(node="gpu-a"), dict(node="gpu-b", status="failed", error="CUDA out of memory")],
    })
    badge = {"good": "ok", "warn": "warn", "bad": "bad"}
    shown = {}
    for day, (run_id, specs) in enumerate(runs.items()):
        when = T0 + timedelta(days=day)
        records = [make_record(run_id=run_id, start_offset_s=day * 86400.0, **spec) for spec in specs]
        analysis = pipeline.analyse(records, run_id=run_id, history_url=url, logical_date=when)
        paths = pipeline.publish_report(analysis, artifacts / run_id / "report")
        pipeline.record(url, analysis, pipeline.run_meta(analysis, logical_date=when, report_path=paths.html,
                                                         artifacts_root=artifacts))
        [(tone, report_says)] = re.findall(r'<div class="banner (\w+)" id="verdict">(.*?)</div>',
                                           Path(paths.html).read_text())
        headline = _text(report_says).removeprefix("Verdict: ")
        notified = notify.summary({"run_id": run_id, "profile": None, "notes": [], "runs": []},
                                  analysis.to_dict(), paths.to_dict(), {"run_id": run_id})
        assert notified["verdict"] == headline, run_id

        page = authed.get(f"/runs/{enc(run_id)}", headers={"Accept": "text/html"}).text
        [page_says] = re.findall(r'<p class="bm-verdict-line" data-testid="verdict">(.*?)</p>', page, re.S)
        assert _text(page_says) == f"Verdict: {headline}", run_id
        [state] = re.findall(rf'<span class="bm-badge bm-badge--{badge[tone]}" data-testid="verdict-state">(\w+)<',
                             page)
        assert headline.split(":")[0] == state, run_id               # the badge is the headline's first word
        shown[run_id] = (state, tone)

        index = authed.get("/", headers={"Accept": "text/html"}).text
        [(latest_tone, latest)] = re.findall(r'<section class="bm-card bm-latest bm-latest--(\w+)" '
                                             r'data-testid="latest-run">(.*?)</section>', index, re.S)
        assert latest_tone == tone and headline in _text(latest), run_id
        [row] = re.findall(rf'<tr class="[^"]*" data-run-id="{re.escape(run_id)}">.*?</tr>', index, re.S)
        [title] = re.findall(r'<span class="bm-verdict" title="([^"]*)"', row)
        assert html.unescape(title) == headline and f"bm-badge--{badge[tone]}" in row, run_id
    # VALID yet red: the regression makes the verdict bad, as the report's banner shows it
    assert shown["regressed"] == ("VALID", "bad") and "regression(s)" in _text(
        authed.get("/runs/regressed", headers={"Accept": "text/html"}).text)
    assert (shown["invalid"], shown["failed"]) == (("INVALID", "bad"), ("FAILED", "bad"))
    assert shown["earlier-0"][0] == "VALID" and shown["earlier-0"][1] in ("good", "warn")


def test_run_page_escapes_hostile_run_id(authed, seeded):
    response = authed.get(f"/runs/{enc(seeded.xss_run)}", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert XSS not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_compare_refuses_across_settings_and_lists_them_beside_the_published_reference(authed, seeded):
    a, b = seeded.run_ids[3], seeded.run_ids[4]       # node-a Offline: bf16, then FP8
    page = authed.get("/compare", params={"a": a, "b": b}, headers={"Accept": "text/html"}).text
    data = authed.get("/api/compare", params={"a": a, "b": b}).json()
    group = next(g for g in data["groups"] if (g["scenario"], g["node"], g["mode"]) ==
                 ("Offline", "node-a", "performance"))
    assert group["same_config"] is False and "quantization: None -> fp8" in group["differences"]
    assert {m["judgement"] for m in group["metrics"]} == {"not-comparable"}
    assert group["published"] and group["published"][0].startswith("MLPerf v")
    assert "Not compared: different settings." in page and "quantization: None -&gt; fp8" in page
    assert "Reference: MLPerf v" in page


def test_compare_two_runs_metric_by_metric(authed, seeded):
    a, b = seeded.run_ids[-3], seeded.latest          # node-b Offline: day 4 and day 6 (day 5 had prefix caching)
    data = authed.get("/api/compare", params={"a": a, "b": b}).json()
    group = next(g for g in data["groups"] if (g["scenario"], g["branch"], g["node"], g["mode"]) ==
                 ("Offline", "single", "node-b", "performance"))
    tps = next(m for m in group["metrics"] if m["metric"] == "tokens_per_second")
    assert tps["change_pct"] == pytest.approx((tps["b"] - tps["a"]) / tps["a"] * 100)
    assert tps["change_pct"] < -10 and tps["judgement"] == "worse"
    page = authed.get("/compare", params={"a": a, "b": b}, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Output throughput" in page.text and "bm-worse" in page.text
    missing = authed.get("/compare", params={"a": a, "b": XSS}, headers={"Accept": "text/html"})
    assert missing.status_code == 404 and XSS not in missing.text


# -- reports ------------------------------------------------------------------------------------------------------

def test_report_is_served_from_the_artefacts_root(authed, seeded):
    response = authed.get(f"/runs/{enc(seeded.latest)}/report/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "MLPerf run report" in response.text
    assert "connect-src 'none'" in response.headers["content-security-policy"]
    chart = authed.get(f"/runs/{enc(seeded.latest)}/report/charts/tps.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    redirect = authed.get(f"/runs/{enc(seeded.latest)}/report", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/report/")


@pytest.mark.parametrize("asset", ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                                   "charts/../../../../../etc/passwd"])
def test_report_assets_cannot_escape_the_report_folder(authed, seeded, asset):
    response = authed.get(f"/runs/{enc(seeded.latest)}/report/{asset}")
    assert response.status_code in (403, 404)
    assert "root:" not in response.text


@pytest.mark.parametrize("which", ["outside_run", "traversal_run"])
def test_recorded_report_paths_outside_the_root_are_refused(authed, seeded, which):
    response = authed.get(f"/runs/{enc(getattr(seeded, which))}/report/")
    assert response.status_code == 403
    assert "root:" not in response.text and "outside the artefacts root" in response.text


def test_report_without_artifacts_root_or_record(authed, seeded, tmp_path, monkeypatch):
    assert authed.get(f"/runs/{enc('manual__never-recorded')}/report/").status_code == 404
    monkeypatch.setenv("MLPERF_ARTIFACTS_DIR", str(tmp_path / "not-mounted"))
    response = authed.get(f"/runs/{enc(seeded.latest)}/report/")
    assert response.status_code == 404 and "MLPERF_ARTIFACTS_DIR" in response.text


# -- empty and unavailable history ----------------------------------------------------------------------------------

def test_empty_history_shows_a_helpful_empty_state(authed, history_url, monkeypatch):
    from include.history import HistoryStore

    HistoryStore(history_url).upgrade()
    monkeypatch.setenv("MLPERF_HISTORY_URL", history_url)
    page = authed.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'data-testid="empty-state"' in page.text and "No benchmark runs recorded yet" in page.text
    assert authed.get("/api/runs").json()["runs"] == []


def test_database_without_schema_is_an_empty_history(authed, tmp_path, monkeypatch):
    monkeypatch.setenv("MLPERF_HISTORY_URL", f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    page = authed.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "No benchmark runs recorded yet" in page.text


@pytest.mark.parametrize("url", ["postgresql+psycopg2://postgres:s3cret@127.0.0.1:1/nothing",
                                 "sqlite:////nonexistent-dir-for-mlperf/sub/h.sqlite"])
def test_database_down_shows_an_error_message_not_a_stack_trace(authed, monkeypatch, url):
    monkeypatch.setenv("MLPERF_HISTORY_URL", url)
    page = authed.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "Benchmark history unavailable" in page.text
    assert "Traceback" not in page.text and "s3cret" not in page.text
    api = authed.get("/api/runs")
    assert api.status_code == 503 and "s3cret" not in api.text and "unavailable" in api.json()["detail"]


def test_history_url_not_configured_is_the_deployments_default(authed, monkeypatch):
    """Nothing set: the deployment's default (/artifacts/history.sqlite under the kubernetes runner), as the DAG
    writes it; absent, an empty history, and the page creates nothing."""
    for name in ("MLPERF_HISTORY_URL", "MLPERF_ARTIFACTS_DIR", "MLPERF_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    page = authed.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "No benchmark runs recorded yet" in page.text
    assert not Path("/artifacts/history.sqlite").exists()


def test_history_url_defaults_like_the_pipeline(authed, artifacts, monkeypatch):
    """Unset, the URL is the pipeline's default: <MLPERF_ARTIFACTS_DIR>/history.sqlite; absent means empty."""
    from tests.ui.seed import seed_history

    monkeypatch.delenv("MLPERF_HISTORY_URL", raising=False)
    page = authed.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "No benchmark runs recorded yet" in page.text
    assert not (artifacts / "history.sqlite").exists()                  # the page created nothing
    seeded = seed_history(f"sqlite:///{artifacts / 'history.sqlite'}", artifacts)
    assert len(authed.get("/api/runs").json()["runs"]) == len(seeded.run_ids)


def test_the_page_never_writes(authed, seeded, history_url):
    """Every route is a GET; the store the app opens refuses writes at the database."""
    from mlperf_benchmarks import app as plugin_app

    methods = {m for route in plugin_app.create_app().routes for m in getattr(route, "methods", ()) or ()}
    assert methods <= {"GET", "HEAD"}
    assert authed.post("/api/runs").status_code in (401, 405)
    authed.get("/api/runs")
    store = plugin_app.get_store()
    assert store.readonly
    with pytest.raises(PermissionError):
        store.record(store.run(seeded.latest), [])


def test_plotly_is_served_from_the_installed_wheel(authed):
    response = authed.get("/static/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js" in response.content[:200]
    assert authed.get("/static/..%2F..%2Fapp.py").status_code == 404
    assert authed.get("/static/nothing.js").status_code == 404
