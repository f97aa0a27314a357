"""The "Benchmarks" page of the Airflow UI: an Airflow 3 plugin (a FastAPI app plus external views).

- nav "Benchmarks": trends, regressions, runs, comparisons (the app's `/`), embedded by the Airflow UI as an iframe;
- dag_run tab "Benchmark report": the run's HTML report. Airflow's UI fills `{RUN_ID}` (and `{DAG_ID}`,
  `{TASK_ID}`, `{MAP_INDEX}`) in an external view's href for destinations other than "nav", URL-encoded.

Airflow's plugin loader imports every .py file under the plugins folder as a top-level module; this package is
excluded from that walk by its .airflowignore and registered once through `plugins/mlperf_benchmarks_plugin.py`.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .app import app as benchmarks_app

URL_PREFIX = "/mlperf-benchmarks"


class MlperfBenchmarksPlugin(AirflowPlugin):
    name = "mlperf_benchmarks"

    fastapi_apps = [{"app": benchmarks_app, "url_prefix": URL_PREFIX, "name": "MLPerf benchmarks"}]
    external_views = [
        {
            "name": "MLPerf",          # the nav shows ~7 characters: "Benchmarks" was cut to "Benchm…"
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "benchmarks",
            "nav_top_level": True,
            "icon": f"{URL_PREFIX}/static/icon.svg",
        },
        {
            "name": "Benchmark report",
            "href": f"{URL_PREFIX}/runs/{{RUN_ID}}/report/",
            "destination": "dag_run",
            "url_route": "benchmark-report",
        },
    ]


__all__ = ["MlperfBenchmarksPlugin", "URL_PREFIX"]
