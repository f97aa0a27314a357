"""The Benchmarks page's pure functions: figures, headline figures, comparisons, report paths."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))   # as Airflow puts its plugins folder

from mlperf_benchmarks import reports, views  # noqa: E402

from include.history import ResultRow  # noqa: E402


def row(run_id="r1", day=1, node="node-a", scenario="Offline", branch="single", mode="performance", valid=True,
        status="completed", tps=5000.0, ttft=180e6, tpot=41e6, rouge_l=None, passed=None, config="abc",
        **verdict) -> ResultRow:
    return ResultRow(
        id=day, run_id=run_id, dag_id="d", logical_date=datetime(2026, 11, day, tzinfo=timezone.utc),
        mlperf_compliant=True, branch=branch, node=node, scenario=scenario, mode=mode, status=status, error=None,
        valid=valid, invalid_reasons=[] if valid is not False else ["min duration not satisfied"],
        config_hash=config, accelerator="NVIDIA H200", versions={"vllm": "0.26.0"}, samples_per_second=tps / 128,
        tokens_per_second=tps, ttft_p50_ns=ttft and ttft / 2, ttft_p99_ns=ttft, tpot_p50_ns=tpot / 2, tpot_p99_ns=tpot,
        latency_p50_ns=None, latency_p99_ns=None, duration_s=600.0, output_tokens=1000, samples_completed=10,
        rouge1=None if rouge_l is None else 38.8, rouge2=None if rouge_l is None else 15.9, rougeL=rouge_l,
        rougeLsum=None if rouge_l is None else 35.8, gen_len=None, gen_num=None, accuracy_passed=passed,
        accuracy_meaningful=None, start_utc=None, end_utc=None, run_dir=None,
        **{"comparability_hash": config, "comparability": {"dtype": config}, **verdict})


def test_invalid_points_leave_the_line_and_are_marked():
    rows = [row("r1", 1), row("r2", 2, valid=False, tps=7000.0), row("r3", 3)]
    fig = views.trend_figure("tokens_per_second", rows, [], views.series_colors(rows))
    line, crosses, legend_key = fig["data"]
    assert line["customdata"] == ["r1", "r3"] and line["y"] == [5000.0, 5000.0]
    assert crosses["customdata"] == ["r2"] and crosses["marker"]["symbol"] == "x-thin-open"
    assert "LoadGen: INVALID (min duration not satisfied)" in crosses["text"][0]
    assert legend_key["name"] == "INVALID run" and legend_key["x"] == [None]


def test_latencies_are_shown_in_milliseconds_and_failed_runs_have_no_point():
    rows = [row("r1", 1, ttft=250e6), row("r2", 2, status="failed", ttft=None)]
    fig = views.trend_figure("ttft_p99_ns", rows, [], {})
    assert fig["data"][0]["y"] == [250.0]
    assert fig["layout"]["yaxis"]["title"]["text"] == "TTFT p99 (ms)"


def test_rouge_chart_marks_failed_targets():
    rows = [row("r1", 1, mode="accuracy", valid=None, rouge_l=24.49, passed=True),
            row("r2", 2, mode="accuracy", valid=None, rouge_l=23.0, passed=False)]
    fig = views.trend_figure("rougeL", rows, [], {})
    assert fig["data"][1]["customdata"] == ["r2"] and fig["data"][2]["name"] == "accuracy targets failed"


def test_regressions_ring_the_point_of_their_run_and_series():
    rows = [row("r1", 1), row("r2", 2, tps=4300.0), row("r2", 2, node="node-b", tps=4300.0)]
    reg = type("Reg", (), dict(run_id="r2", metric="tokens_per_second", node="node-a", scenario="Offline",
                               branch="single", current=4300.0, baseline=5000.0, change_pct=-14.0,
                               threshold_pct=5.0, p_value=0.01, explanation="<b>slower</b>"))()
    fig = views.trend_figure("tokens_per_second", rows, [reg], {})
    ring = next(t for t in fig["data"] if t["name"] == "Regression detected")
    assert ring["y"] == [4300.0] and "&lt;b&gt;slower&lt;/b&gt;" in ring["text"][0]
    assert views.trend_figure("ttft_p99_ns", rows, [reg], {})["data"][-1]["name"] != "Regression detected"


def test_hover_text_escapes_user_values():
    fig = views.trend_figure("tokens_per_second", [row("<img src=x onerror=alert(1)>", 1)], [], {})
    assert "<img" not in fig["data"][0]["text"][0] and "&lt;img src=x" in fig["data"][0]["text"][0]


@pytest.mark.parametrize("baseline,current,expected", [(100, 90, -10.0), (100, 110, 10.0), (0, 5, None),
                                                       (None, 5, None), (100, None, None)])
def test_change_pct(baseline, current, expected):
    assert views.change_pct(baseline, current) == (pytest.approx(expected) if expected is not None else None)


def test_judgement_follows_each_metric_direction():
    assert views.judge(views.METRICS["tokens_per_second"], -10) == "worse"
    assert views.judge(views.METRICS["ttft_p99_ns"], -10) == "better"
    assert views.judge(views.METRICS["rougeL"], 0.1) == "same"
    assert views.judge(views.METRICS["duration_s"], 50) == "neutral"


def test_compare_runs_pairs_sut_runs_and_judges_only_the_same_settings():
    a = [row("a", 1, tps=5000.0), row("a", 1, node="node-b", status="failed")]
    groups = views.compare_runs(a, [row("b", 2, tps=4500.0)])
    first = groups[0]
    assert (first["node"], first["same_config"], first["differences"]) == ("node-a", True, [])
    tps = next(m for m in first["metrics"] if m["metric"] == "tokens_per_second")
    assert tps["change_pct"] == pytest.approx(-10.0) and tps["judgement"] == "worse"
    assert groups[1]["a_state"] == "failed" and groups[1]["b_state"] == "absent"


def test_compare_refuses_to_judge_across_settings_and_says_what_differs():
    """bf16 against FP8 is no regression and no '+185%' improvement: the settings differ, and the page says how."""
    [group] = views.compare_runs([row("a", 1, tps=5000.0, config="bfloat16")], [row("b", 2, tps=14000.0, config="fp8")])
    assert group["same_config"] is False and group["differences"] == ["dtype: bfloat16 -> fp8"]
    assert {m["judgement"] for m in group["metrics"]} == {"not-comparable"}


def test_an_implausible_point_is_marked_and_never_judged():
    rows = [row("r1", 1), row("r2", 2, tps=21101.6, plausibility="implausible", verdict="VALID · IMPLAUSIBLE")]
    fig = views.trend_figure("tokens_per_second", rows, [], views.series_colors(rows))
    line, marked, legend_key = fig["data"]
    assert line["customdata"] == ["r1"] and marked["customdata"] == ["r2"]
    assert "verdict: VALID · IMPLAUSIBLE" in marked["text"][0]
    assert legend_key["name"].startswith("physically implausible")
    [group] = views.compare_runs(rows[:1], rows[1:])
    assert group["implausible"] == ["B"] and {m["judgement"] for m in group["metrics"]} == {"not-comparable"}


def test_headline_prefers_valid_throughput():
    headline = views.run_headline([row(tps=9000.0, valid=False), row(node="node-b", tps=5000.0)])
    assert headline["tokens_per_second"] == 5000.0 and headline["tokens_per_second_valid"] is True


def test_report_paths_are_confined_to_the_root(tmp_path):
    root = tmp_path / "artifacts"
    (root / "run1" / "charts").mkdir(parents=True)
    report = root / "run1" / "report.html"
    report.write_text("<html></html>")
    (root / "run1" / "charts" / "a.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "run1" / "link.html").symlink_to(tmp_path / "secret.txt")
    assert reports.resolve_report(str(report), root) == report.resolve()
    assert reports.resolve_report("run1/report.html", root) == report.resolve()        # relative to the root
    assert reports.resolve_asset(report.resolve(), "charts/a.svg", root).name == "a.svg"
    for bad in (str(tmp_path / "secret.txt"), "../secret.txt", str(root / "run1" / "link.html"), "/etc/passwd"):
        with pytest.raises(reports.ReportRefused):
            reports.resolve_report(bad, root)
    for bad in ("../../secret.txt", "/etc/passwd", "link.html", "charts/../../../secret.txt", "a\x00b"):
        with pytest.raises((reports.ReportRefused, reports.ReportUnavailable)):
            reports.resolve_asset(report.resolve(), bad, root)
    with pytest.raises(reports.ReportUnavailable):
        reports.resolve_report(None, root)
    with pytest.raises(reports.ReportUnavailable):
        reports.resolve_report(str(report), None)
