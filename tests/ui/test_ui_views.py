"""The Benchmarks page's pure functions: figures, headline figures, comparisons, report paths."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))   # as Airflow puts its plugins folder

from mlperf_benchmarks import reports, trends, views  # noqa: E402

from include.history import ResultRow  # noqa: E402
from include.history.rows import TrendRow  # noqa: E402


def row(run_id="r1", day=1, node="node-a", scenario="Offline", branch="single", mode="performance", valid=True,
        status="completed", tps=5000.0, ttft=180e6, tpot=41e6, rouge_l=None, passed=None, config="abc", error=None,
        **verdict) -> ResultRow:
    return ResultRow(
        id=day, run_id=run_id, dag_id="d", logical_date=datetime(2026, 11, day, tzinfo=timezone.utc),
        mlperf_compliant=True, branch=branch, node=node, scenario=scenario, mode=mode, status=status, error=error,
        valid=valid, invalid_reasons=[] if valid is not False else ["min duration not satisfied"],
        config_hash=config, accelerator="NVIDIA H200", versions={"vllm": "0.26.0"},
        samples_per_second=tps and tps / 128,
        tokens_per_second=tps, ttft_p50_ns=ttft and ttft / 2, ttft_p99_ns=ttft, tpot_p50_ns=tpot / 2, tpot_p99_ns=tpot,
        latency_p50_ns=None, latency_p99_ns=None, duration_s=600.0, output_tokens=1000, samples_completed=10,
        rouge1=None if rouge_l is None else 38.8, rouge2=None if rouge_l is None else 15.9, rougeL=rouge_l,
        rougeLsum=None if rouge_l is None else 35.8, gen_len=None, gen_num=None, accuracy_passed=passed,
        accuracy_meaningful=None, start_utc=None, end_utc=None, run_dir=None,
        **{"comparability_hash": config, "comparability": {"dtype": config}, **verdict})


def groups(rows, regressions=(), published=()):
    return trends.build_groups(rows, regressions, published)


def traces(fig, meta=None):
    return [t for t in fig["data"] if meta is None or t.get("meta") == meta]


def test_a_change_of_settings_starts_a_new_series_and_says_what_changed():
    """bf16 then FP8 on the same node: two series, never one line with a '+185%' jump."""
    rows = [row("r1", 1, config="bfloat16"), row("r2", 2, config="bfloat16"), row("r3", 3, tps=14000.0, config="fp8")]
    [group] = groups(rows)
    assert [(s.name, len(s.rows)) for s in group.series] == [("S1", 2), ("S2", 1)]
    assert group.series[1].changed == ["dtype: bfloat16 -> fp8"] and group.series[1].previous == "S1"
    line_1, line_2 = traces(group.figures[0])[:2]
    assert line_1["y"] == [5000.0, 5000.0] and line_2["y"] == [14000.0]


def test_settings_in_words():
    key = {"model": "llama3.1-8b", "load_format": "auto", "dtype": "bfloat16", "quantization": "fp8",
           "kv_cache_dtype": "fp8", "prefix_caching": False, "max_num_seqs": 1024, "max_num_batched_tokens": 32768,
           "tensor_parallel_size": 1, "engine_args": {}, "backend": "vllm", "accelerator": "NVIDIA H200",
           "accelerator_count": 1, "vllm_version": "0.26.0", "server_target_qps": None}
    assert trends.settings_words(key) == ("FP8 weights + FP8 KV, max_num_seqs 1,024, max_num_batched_tokens 32,768, "
                                          "vLLM 0.26.0, 1x H200")
    assert "prefix caching ON" in trends.settings_words({**key, "prefix_caching": True})
    assert trends.settings_words(None).startswith("settings not recorded")


def test_every_point_shows_its_verdict_in_shape_and_colour_with_a_legend_key():
    rows = [row("r1", 1, compliance="compliant"), row("r2", 2, compliance="not compliant"),
            row("r3", 3, submission_grade=False, compliance="not compliant"),
            row("r4", 4, valid=False, tps=7000.0, state="INVALID"),
            row("r5", 5, tps=21101.6, plausibility="implausible", verdict="VALID · IMPLAUSIBLE"),
            row("r6", 6, status="failed", tps=None, error="pod exited")]
    [group] = groups(rows)
    fig = next(f for f in group.figures if f["metric"] == "tokens_per_second")
    line = fig["data"][0]
    assert line["customdata"] == ["r1", "r2", "r3"]
    assert line["marker"]["symbol"] == ["circle", "circle-open", "diamond-open"]
    assert traces(fig, "invalid")[0]["customdata"] == ["r4"]
    implausible = traces(fig, "implausible")[0]
    assert implausible["customdata"] == ["r5"] and "verdict: VALID · IMPLAUSIBLE" in implausible["text"][0]
    failed = traces(fig, "failed")[0]
    assert failed["customdata"] == ["r6"] and failed["y"] == [0] and "pod exited" in failed["text"][0]
    keys = {t["meta"] for t in fig["data"] if str(t.get("meta", "")).startswith("key:")}
    assert keys == {"key:not-compliant", "key:not-grade", "key:invalid", "key:implausible", "key:failed"}


def test_points_are_dated_by_the_runs_own_time():
    import dataclasses

    ran = datetime(2026, 10, 3, 9, 33, tzinfo=timezone.utc)
    [group] = groups([dataclasses.replace(row("imported", 20), at=ran)])
    assert group.figures[0]["data"][0]["x"] == [ran.isoformat()]


def test_one_point_gets_a_readable_axis():
    [group] = groups([row("r1", 1, mode="accuracy", valid=None, rouge_l=24.49, passed=True)])
    rouge = next(f for f in group.figures if f["metric"] == "rougeL")
    low, high = rouge["layout"]["yaxis"]["range"]
    assert 20 < low < 24.49 < high < 30                         # not down to -0.5
    assert len(rouge["layout"]["xaxis"]["range"]) == 2          # a two-day window, not sub-second ticks


def test_published_results_are_reference_lines_for_the_same_accelerator_and_scenario():
    from types import SimpleNamespace

    def pub(round_, per_gpu, accelerator="H200", scenario="Offline"):
        return SimpleNamespace(round=round_, accelerator=accelerator, scenario=scenario, submitter="NVIDIA",
                               system="DGX H200", source_url="https://github.com/mlcommons/x",
                               tokens_per_s_per_accelerator=per_gpu,
                               label=f"MLPerf {round_}, 8x {accelerator} TensorRT-LLM (NVIDIA): {per_gpu:,.0f} "
                                     "tokens/s per GPU")

    published = [pub("v5.1", 7288.0), pub("v5.1", 6000.0), pub("v6.0", 7500.0), pub("v5.1", 9e9, "B200"),
                 pub("v5.1", 9e9, scenario="Server")]
    [group] = groups([row("r1", 1), row("r2", 2)], published=published)
    lines = traces(group.figures[0], "published")
    assert [t["y"] for t in lines] == [[7500.0, 7500.0], [7288.0, 7288.0]]       # best per round, newest first
    assert lines[1]["name"] == "MLPerf v5.1, 8x H200 TensorRT-LLM (NVIDIA): 7,288 tokens/s per GPU"
    assert traces(group.figures[1], "published") == []                           # TTFT: no reference


def test_the_reference_line_names_the_newest_rounds_best_for_the_accelerator():
    """With the committed published results (as the history stores them): an H200 chart's first dashed line is
    v6.1's best H200 system, then v5.1's (v6.0 published none on H200 SXM); and every accelerator's first line is
    the newest round that published it."""
    import dataclasses

    from include.analysis.published import best_published, load_published
    from include.history.rows import PublishedRow

    published = [PublishedRow(**{f.name: getattr(p, f.name) for f in dataclasses.fields(PublishedRow)})
                 for p in load_published()]
    [offline] = groups([row("r1", 1), row("r2", 2)], published=published)
    [server] = groups([row("r1", 1, scenario="Server"), row("r2", 2, scenario="Server")], published=published)
    assert [t["name"] for t in traces(offline.figures[0], "published")] == [
        "MLPerf v6.1, 1x H200 TensorRT-LLM (Naeem Khoshnevis): 7,797 tokens/s per GPU",
        "MLPerf v5.1, 8x H200 TensorRT-LLM (HPE): 8,255 tokens/s per GPU"]
    assert offline.references == [t["name"] for t in traces(offline.figures[0], "published")]
    assert [t["y"][0] for t in traces(server.figures[0], "published")] == [7376.6, 8114.3]
    newest: dict[tuple[str, str], str] = {}
    for p in published:
        key = (p.accelerator, p.scenario)
        newest[key] = max(newest.get(key, p.round), p.round, key=lambda r: tuple(map(int, r[1:].split("."))))
    for (accelerator, scenario), round_ in newest.items():
        [first, *_] = best_published(published, accelerator, scenario)
        assert first.round == round_, (accelerator, scenario)
        assert first.label.startswith(f"MLPerf {round_}, ")


def test_regressions_ring_the_point_of_their_run_and_series():
    rows = [row("r1", 1), row("r2", 2, tps=4300.0), row("r2", 2, node="node-b", tps=4300.0)]
    reg = type("Reg", (), dict(run_id="r2", metric="tokens_per_second", node="node-a", scenario="Offline",
                               branch="single", current=4300.0, baseline=5000.0, change_pct=-14.0,
                               threshold_pct=5.0, p_value=0.01, explanation="<b>slower</b>"))()
    [group] = groups(rows, [reg])
    ring = next(t for t in group.figures[0]["data"] if t["name"] == "regression detected")
    assert ring["y"] == [4300.0] and "&lt;b&gt;slower&lt;/b&gt;" in ring["text"][0]
    assert all(t["name"] != "regression detected" for t in group.figures[1]["data"])


def test_hover_text_escapes_user_values():
    [group] = groups([row("<img src=x onerror=alert(1)>", 1)])
    text = group.figures[0]["data"][0]["text"][0]
    assert "<img" not in text and "&lt;img src=x" in text


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


def test_compare_gives_no_change_where_the_baseline_has_no_figure():
    """A zero or missing baseline figure has no change in percent: the page shows '—', neither +inf% nor a judgement."""
    [group] = views.compare_runs([row("a", 1, tps=0.0, ttft=None)], [row("b", 2, tps=4500.0)])
    by_metric = {m["metric"]: m for m in group["metrics"]}
    assert [(by_metric[name]["change_pct"], by_metric[name]["judgement"]) for name in (
        "tokens_per_second", "ttft_p99_ns")] == [(None, "neutral"), (None, "neutral")]
    assert by_metric["tpot_p99_ns"]["change_pct"] == pytest.approx(0.0)


def test_compare_refuses_to_judge_across_settings_and_says_what_differs():
    """bf16 against FP8 is no regression and no '+185%' improvement: the settings differ, and the page says how."""
    [group] = views.compare_runs([row("a", 1, tps=5000.0, config="bfloat16")], [row("b", 2, tps=14000.0, config="fp8")])
    assert group["same_config"] is False and group["differences"] == ["dtype: bfloat16 -> fp8"]
    assert group["a_settings"] != group["b_settings"]
    assert {m["judgement"] for m in group["metrics"]} == {"not-comparable"}


def test_an_implausible_run_is_never_judged_in_compare():
    rows = [row("r1", 1), row("r2", 2, tps=21101.6, plausibility="implausible", verdict="VALID · IMPLAUSIBLE")]
    [group] = views.compare_runs(rows[:1], rows[1:])
    assert group["implausible"] == ["B"] and {m["judgement"] for m in group["metrics"]} == {"not-comparable"}


def test_the_page_draws_the_same_charts_from_the_stores_narrow_trend_rows():
    rows = [row("r1", 1), row("r2", 2, valid=False), row("r3", 3, status="failed", tps=None, error="pod exited"),
            row("r4", 4, mode="accuracy", rouge_l=24.5, passed=True, tps=None), row("r5", 5, config="fp8"),
            row("r6", 6, plausibility="implausible", tps=21101.6)]
    seen: set = set()

    def narrow(r):   # as HistoryStore.trend_rows reads them: the key on the first row of each key only
        first = r.comparability_hash not in seen
        seen.add(r.comparability_hash)
        return TrendRow(**{f: getattr(r, f) for f in TrendRow._fields if f != "comparability"},
                        comparability=r.comparability if first else None)
    wide, slim = groups(rows), groups([narrow(r) for r in rows])
    assert [(g.title, g.figures, [s.settings for s in g.series]) for g in slim] == [
        (g.title, g.figures, [s.settings for s in g.series]) for g in wide]


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
