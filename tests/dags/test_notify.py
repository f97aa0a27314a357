"""The final verdict makes a run with a failed node (or, if asked, a regression) red; it and notify carry the
pipeline's verdict unchanged, work when an upstream task failed, and never log secrets."""
from __future__ import annotations

import logging

import pytest

from include import pipeline
from include.reporting import notify
from tests.analysis.analysis_factory import make_record

PLAN = {"run_id": "r1", "profile": "embedded", "compliant": False, "notes": ["NOT MLPerf-compliant"],
        "fail_on_regression": False,
        "runs": [{"name": "single/a/Offline/performance", "output_dir": "/x/a"},
                 {"name": "single/b/Offline/performance", "output_dir": "/x/b"}]}


def analysis(b_status: str = "completed") -> dict:
    records = [make_record("a")]
    if b_status == "failed":
        records.append(make_record("b", status="failed", error="vLLM engine died"))
    elif b_status == "missing":
        records.append(make_record("b", status="missing", error="/x/b/result.json: missing"))
    else:
        records.append(make_record("b"))
    return pipeline.analyse(records, run_id="r1", history_url=None).to_dict()


RECORDED = {"run_id": "r1", "status": "completed", "results": 2}


def with_regression(data: dict) -> dict:
    return {**data, "verdict": {**data["verdict"], "regressions": ["tokens_per_second a Offline -12.0%"]}}


def test_all_completed_is_green_and_says_the_pipelines_verdict():
    data = analysis()
    text = notify.summary(PLAN, data, {"html": "/r.html"}, RECORDED)
    assert text["verdict"] == data["verdict"]["headline"]
    assert notify.verdict(text, {**PLAN, "fail_on_regression": True}) == data["verdict"]["headline"]


@pytest.mark.parametrize("status", ["failed", "missing"])
def test_a_failed_or_missing_node_is_red(status):
    text = notify.summary(PLAN, analysis(status), {"html": "/r.html"})
    assert text["failed"] == [r for r in text["failed"] if r.startswith("single/b/Offline/performance")]
    with pytest.raises(notify.BenchmarkFailed, match=r"1 run\(s\) failed or missing: single/b/Offline/performance"
                                                     r".*Report: \{'html': '/r.html'\}"):
        notify.verdict(text, PLAN)


def test_regressions_fail_only_when_asked():
    text = notify.summary(PLAN, with_regression(analysis()), {"html": "/r.html"}, RECORDED)
    assert notify.verdict(text, PLAN)
    with pytest.raises(notify.BenchmarkFailed, match="1 regression"):
        notify.verdict(text, {**PLAN, "fail_on_regression": True})


def test_without_a_report_notify_and_verdict_still_answer():
    """The report task failed: its XCom is None. Both name what is missing instead of crashing."""
    text = notify.summary(PLAN, analysis("failed"), None)
    assert text["report"] == "no report: the report task failed (see its log)"
    with pytest.raises(notify.BenchmarkFailed, match="single/b/Offline/performance.*no report"):
        notify.verdict(text, PLAN)


def test_without_an_analysis_the_run_is_red_and_says_why():
    """The analyse task failed: no verdict exists, so nothing may look green."""
    text = notify.summary(PLAN, None, None)
    assert text["verdict"].startswith("UNKNOWN: the results pipeline failed before it judged the runs")
    with pytest.raises(notify.BenchmarkFailed, match="results pipeline failed"):
        notify.verdict(None, PLAN, None)            # notify_team failed too: verdict rebuilds the summary


def test_a_run_the_history_did_not_record_is_red_and_says_so():
    """record_history failed (a corrupt or read-only database): its XCom is None. The run is missing from the history
    and the page, so the DAG run must not end green, and the notification says why."""
    text = notify.summary(PLAN, analysis(), {"html": "/r.html"}, None)
    assert text["history_failed"] and text["history"].startswith("NOT recorded: the record_history task failed")
    with pytest.raises(notify.BenchmarkFailed, match="the run is not recorded: the record_history task failed"):
        notify.verdict(text, PLAN)
    with pytest.raises(notify.BenchmarkFailed, match="not recorded"):
        notify.verdict(None, PLAN, analysis(), None)      # notify_team failed too
    assert notify.summary(PLAN, analysis(), None, RECORDED)["history"] == "recorded as r1"


def test_webhook_url_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    text = notify.summary(PLAN, analysis(), {"html": "/r.html"})
    notify.notify(text, "http://127.0.0.1:9/hooks/T0-s3cret")     # nothing listens: the send fails quietly
    assert "s3cret" not in caplog.text
