"""The report's line "submission check: passed / N problems", the problems grouped by rule with paths relative to
the tree, from the check the `submission` task made (its dict, as XCom carries it); no line where no check was made
(the report CLI)."""
from __future__ import annotations

from pathlib import Path

from include.pipeline import analyse, publish_report
from include.submission.checker import Problem
from include.submission.run import check_result
from tests.analysis.analysis_factory import make_record

TREE = Path("/artifacts/run/submission")
DETAIL = "open/Org/results/s/llama3.1-8b/{}/performance/run_1/mlperf_log_detail.txt"
CHECK = check_result(TREE, [
    Problem("settings", str(TREE / DETAIL.format("Offline")), "min_duration 0 s, below MLPerf's 600 s"),
    Problem("settings", str(TREE / DETAIL.format("Server")), "min_duration 0 s, below MLPerf's 600 s"),
    Problem("compliance", str(TREE / "closed/Org/results/s/llama3.1-8b/Server/TEST06/verify_accuracy.txt"),
            "<TEST06> missing")])


def test_the_report_says_how_the_submission_check_went(tmp_path):
    analysis = analyse([make_record("gpu-a")], run_id="manual__2026-11-29", history_url=None)
    paths = publish_report(analysis, tmp_path, CHECK)
    md, html = paths.markdown.read_text(), paths.html.read_text()
    assert "**submission check: 3 problems** (MLPerf submission tree: `/artifacts/run/submission`)" in md
    # one line per rule on the first screen, paths relative to the tree
    assert f"- [settings] 2 problems: {DETAIL.format('Offline')}: min_duration 0 s" in md
    assert "- [compliance] 1 problem: closed/Org/" in md
    assert str(TREE / "open") not in md
    assert "submission check: 3 problems" in html and "&lt;TEST06&gt; missing" in html     # escaped
    passed = publish_report(analysis, tmp_path / "passed", check_result(TREE, []))
    assert "**submission check: passed**" in passed.markdown.read_text()
    assert "submission check" not in publish_report(analysis, tmp_path / "none").markdown.read_text()
