"""The plugin in a real `airflow api-server`, driven by headless Chromium (Playwright with Debian's chromium).

Starts the API server on a free 127.0.0.1 port with a private AIRFLOW_HOME, the repository's plugins folder and a
seeded SQLite history; logs in through POST /auth/token with a SimpleAuthManager user; opens the Benchmarks page
and the Airflow UI page that embeds it; saves screenshots under test-artifacts/ui/ (git-ignored).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.ui.conftest import PASSWORDS, REPO, airflow_bin, running_api_server

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("MLPERF_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / "test-artifacts" / "ui"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


PROBE_DAG = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("ui_probe", schedule=None):
    EmptyOperator(task_id="noop")
"""


@pytest.fixture(scope="module")
def server(airflow_home, tmp_path_factory):
    from tests.ui.seed import seed_history

    data_dir = tmp_path_factory.mktemp("ui-history")
    history_url = f"sqlite:///{data_dir / 'history.sqlite'}"
    seeded = seed_history(history_url, data_dir / "artifacts")
    env = {**os.environ, **airflow_home["env"], "PYTHONPATH": airflow_home["pythonpath"],
           "MLPERF_HISTORY_URL": history_url, "MLPERF_ARTIFACTS_DIR": str(data_dir / "artifacts")}
    # A DAG whose runs get the plugin's "Benchmark report" tab (the tab shows on every DAG run).
    (airflow_home["home"] / "dags" / "ui_probe.py").write_text(PROBE_DAG)
    subprocess.run([airflow_bin(), "dags", "reserialize"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    log_path = data_dir / "api-server.log"
    with running_api_server(env, log_path) as base:
        yield {"base": base, "seeded": seeded, "log": log_path}


@pytest.fixture(scope="module")
def token(server) -> str:
    response = httpx.post(f"{server['base']}/auth/token",
                          json={"username": "viewer", "password": PASSWORDS["viewer"]}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (or set MLPERF_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_plugin_is_mounted_and_protected(server, token):
    base = server["base"]
    anonymous = httpx.get(f"{base}/mlperf-benchmarks/api/runs", timeout=30)
    assert anonymous.status_code == 401
    browser_like = httpx.get(f"{base}/mlperf-benchmarks/", headers={"Accept": "text/html"}, timeout=30)
    assert browser_like.status_code == 303 and "/auth/login" in browser_like.headers["location"]
    authed = httpx.get(f"{base}/mlperf-benchmarks/api/runs", headers={"Authorization": f"Bearer {token}"},
                       timeout=30)
    assert authed.status_code == 200 and len(authed.json()["runs"]) == len(server["seeded"].run_ids)
    plugins = httpx.get(f"{base}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    views = {v["name"]: v for p in plugins.json()["plugins"] for v in p["external_views"]}
    assert views["MLPerf"]["destination"] == "nav"
    assert views["Benchmark report"]["destination"] == "dag_run"
    assert "{RUN_ID}" in views["Benchmark report"]["href"]
    errors = httpx.get(f"{base}/api/v2/plugins/importErrors", headers={"Authorization": f"Bearer {token}"},
                       timeout=30).json()
    assert errors["total_entries"] == 0, errors                  # the package is imported once, as a package


def traces_of(page, metric: str, meta: str) -> list:
    """What Plotly drew for one chart's traces of a kind (the figure Plotly keeps on its element)."""
    return page.evaluate(
        "([metric, meta]) => Array.from(document.querySelectorAll(`.bm-chart[data-metric='${metric}']`))"
        ".flatMap(el => (el.data || []).filter(t => t.meta === meta).map(t => ({name: t.name, "
        "customdata: t.customdata || []})))", [metric, meta])


def test_benchmarks_page_renders_series_verdicts_and_references(server, token, browser):
    """What an engineer checks in the morning: the latest run's verdict first, one line per setting, the
    implausible prefix-cache run marked, the published MLPerf reference, and the report a click away."""
    base = server["base"]
    seeded = server["seeded"]
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{base}/mlperf-benchmarks/", wait_until="networkidle")
        page.wait_for_function("document.querySelectorAll(\".bm-chart[data-rendered='true']\").length === 7",
                               timeout=60_000)          # Offline · H200: 4 charts, Server · H200: 3
        page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
        latest = page.locator("[data-testid='latest-run']")
        assert seeded.latest in latest.inner_text() and "regression" in latest.inner_text()

        # Two series for two settings: node-a's bf16 runs and its FP8 runs, each with its settings in words.
        offline = page.locator("[data-testid='trend-group'][data-scenario='Offline']")
        series = offline.locator("[data-testid='series-table'] tbody tr").all_inner_texts()
        node_a = [s for s in series if "single · node-a" in s and "accuracy" not in s]
        assert len(node_a) == 2 and "BF16 weights" in node_a[0] and "FP8 weights + FP8 KV" in node_a[1]
        assert "quantization: None -> fp8" in node_a[1]
        lines = page.evaluate("Array.from(document.querySelectorAll(\"[data-scenario='Offline'] "
                              ".bm-chart[data-metric='tokens_per_second']\"))"
                              ".flatMap(el => el.data.filter(t => t.mode === 'lines+markers').map(t => t.name))")
        assert sum(name.endswith("node-a") for name in lines) == 2

        # The implausible mark on the prefix-cache run, with its legend key.
        [implausible] = traces_of(page, "tokens_per_second", "implausible")
        assert implausible["customdata"] == [seeded.implausible_run]
        legend = " ".join(page.locator(".bm-chart[data-metric='tokens_per_second'] .legendtext").all_text_contents())
        assert "physically implausible" in legend
        # The published reference line, drawn and named in the legend.
        published = traces_of(page, "tokens_per_second", "published")
        assert published and "MLPerf v" in legend and "tokens/s per GPU" in legend
        assert "MLPerf v" in offline.locator("[data-testid='published-reference']").first.inner_text()
        assert page.locator(".bm-chart[data-metric='tokens_per_second'] .scatterlayer .trace").count() >= 8

        assert page.get_by_text(seeded.xss_run).count() >= 1                # the hostile run id, shown as text
        rows = page.locator("[data-testid='runs-table'] tbody tr")
        assert rows.count() == len(seeded.run_ids)
        assert dialogs == [], "a script from the data ran"
        assert errors == [], errors

        # Hover on a point: its run, its settings and its verdict.
        point = page.locator(".bm-chart[data-metric='tokens_per_second'] .scatterlayer .trace .points path").first
        point.hover(force=True)
        page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
        hover = page.locator(".hoverlayer .hovertext").first.text_content()
        assert "run:" in hover and "verdict:" in hover and "weights" in hover

        # The latest run's report link opens the report.
        with page.expect_navigation():
            latest.get_by_role("link", name="report").click()
        page.get_by_text("MLPerf run report").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "report.png"), full_page=True)

        # Filters: scenario Server only.
        page.goto(f"{base}/mlperf-benchmarks/?scenario=Server", wait_until="networkidle")
        page.wait_for_function("document.querySelectorAll(\".bm-chart[data-rendered='true']\").length === 3",
                               timeout=60_000)
        page.screenshot(path=str(SHOTS / "overview-server.png"), full_page=True)

        # Compare across settings: refused, with the differing settings and the published reference.
        page.goto(f"{base}/mlperf-benchmarks/compare?a={quote(seeded.run_ids[3])}&b={quote(seeded.run_ids[4])}")
        assert page.locator("[data-testid='not-comparable']").count() >= 1
        assert page.locator("[data-testid='published-reference']").count() >= 1
        page.screenshot(path=str(SHOTS / "compare-settings.png"), full_page=True)
        # Compare like with like: node-b Offline regressed.
        page.goto(f"{base}/mlperf-benchmarks/compare?a={quote(seeded.run_ids[-3])}&b={quote(seeded.latest)}")
        assert page.locator(".bm-worse").count() >= 1
        page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)

        # One run's page: its SUT runs with their verdicts, and its report embedded.
        page.goto(f"{base}/mlperf-benchmarks/runs/{quote(seeded.implausible_run, safe='')}")
        assert "IMPLAUSIBLE" in page.locator("[data-testid='run']").inner_text() + page.content()
        page.screenshot(path=str(SHOTS / "run-implausible.png"), full_page=True)
        page.goto(f"{base}/mlperf-benchmarks/runs/{quote(seeded.latest, safe='')}")
        page.frame_locator("iframe.bm-report__frame").get_by_text("MLPerf run report").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "run.png"), full_page=True)
    finally:
        context.close()


def test_airflow_ui_embeds_the_page_and_the_run_report_tab(server, token, browser):
    base = server["base"]
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    page = context.new_page()
    try:
        page.goto(f"{base}/plugin/benchmarks", wait_until="networkidle")
        frame_el = page.wait_for_selector("iframe[title='MLPerf']", timeout=60_000)
        frame = frame_el.content_frame()
        frame.wait_for_selector(".bm-chart[data-rendered='true']", timeout=60_000)
        page.screenshot(path=str(SHOTS / "airflow-nav.png"))

        # The dag_run tab: a DAG run whose id the history knows; Airflow's UI fills {RUN_ID} in the tab's href.
        admin = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": PASSWORDS["admin"]},
                           timeout=30).json()["access_token"]
        run_id = server["seeded"].latest
        created = httpx.post(f"{base}/api/v2/dags/ui_probe/dagRuns", json={"dag_run_id": run_id,
                             "logical_date": None}, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        assert created.status_code in (200, 409), created.text
        page.goto(f"{base}/dags/ui_probe/runs/{quote(run_id, safe='')}/plugin/benchmark-report",
                  wait_until="networkidle")
        tab = page.wait_for_selector("iframe[title='Benchmark report']", timeout=60_000).content_frame()
        tab.get_by_text("MLPerf run report").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "dag-run-tab.png"))
    finally:
        context.close()
