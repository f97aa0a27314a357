"""The report's line "submission check: passed / N problems", with each problem's rule and file, from the check the
`submission` task made (its dict, as XCom carries it); no line where no check was made (the report CLI)."""
from __future__ import annotations

from include.pipeline import analyse, publish_report
from tests.analysis.analysis_factory import make_record

CHECK = {"line": "submission check: 2 problems", "passed": False, "tree": "/artifacts/run/submission",
         "problems": ["[settings] open/Org/results/s/llama3.1-8b/Offline/performance/run_1/mlperf_log_detail.txt: "
                      "min_duration 0 s, below MLPerf's 600 s",
                      "[compliance] closed/Org/results/s/llama3.1-8b/Server/TEST06/verify_accuracy.txt: <TEST06> "
                      "missing"]}


def test_the_report_says_how_the_submission_check_went(tmp_path):
    analysis = analyse([make_record("gpu-a")], run_id="manual__2026-11-29", history_url=None)
    paths = publish_report(analysis, tmp_path, CHECK)
    md, html = paths.markdown.read_text(), paths.html.read_text()
    assert "**submission check: 2 problems** (MLPerf submission tree: `/artifacts/run/submission`)" in md
    assert f"- {CHECK['problems'][0]}" in md
    assert "submission check: 2 problems" in html and "&lt;TEST06&gt; missing" in html     # escaped
    passed = publish_report(analysis, tmp_path / "passed", {**CHECK, "line": "submission check: passed",
                                                            "passed": True, "problems": []})
    assert "**submission check: passed**" in passed.markdown.read_text()
    assert "submission check" not in publish_report(analysis, tmp_path / "none").markdown.read_text()
