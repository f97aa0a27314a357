"""The final verdict makes a run with a failed node (or, if asked, a regression) red; notify never logs secrets."""
from __future__ import annotations

import logging

import pytest

from include import notify

PLAN = {"run_id": "r1", "profile": "embedded", "compliant": False, "notes": ["NOT MLPerf-compliant"],
        "runs": [{"name": "single/a/Offline/performance", "output_dir": "/x/a"},
                 {"name": "single/b/Offline/performance", "output_dir": "/x/b"}]}


def analysis(b_status="completed", regressions=()):
    records = [{"run_dir": "/x/a", "status": "completed", "loadgen": {"valid": True, "tokens_per_second": 10.0}}]
    if b_status != "missing":
        records.append({"run_dir": "/x/b", "status": b_status, "error": "boom", "loadgen": None})
    return {"records": records, "regressions": list(regressions), "compliance": {"mlperf_compliant": False}}


REG = {"metric": "tokens_per_second", "node": "a", "scenario": "Offline", "change_pct": -12.0}


def test_all_completed_is_green():
    text = notify.summary(PLAN, analysis(), {"html": "/r.html"})
    assert "NOT MLPerf-compliant" in notify.verdict(text, fail_on_regression=True)


@pytest.mark.parametrize("status", ["failed", "missing"])
def test_a_failed_or_missing_node_is_red(status):
    text = notify.summary(PLAN, analysis(status), {"html": "/r.html"})
    assert text["failed_nodes"] == ["b"]
    with pytest.raises(notify.BenchmarkFailed, match=r"node\(s\) b: single/b/Offline/performance.*Report: /r.html"):
        notify.verdict(text, fail_on_regression=False)


def test_regressions_fail_only_when_asked():
    text = notify.summary(PLAN, analysis(regressions=[REG]), {"html": "/r.html"})
    assert notify.verdict(text, fail_on_regression=False)
    with pytest.raises(notify.BenchmarkFailed, match="1 regression"):
        notify.verdict(text, fail_on_regression=True)


def test_webhook_url_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    text = notify.summary(PLAN, analysis(), {"html": "/r.html"})
    notify.notify(text, "http://127.0.0.1:9/hooks/T0-s3cret")     # nothing listens: the send fails quietly
    assert "s3cret" not in caplog.text
