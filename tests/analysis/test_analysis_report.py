"""include.reporting.report / include.pipeline: the report says what the records say, escapes what it must, and is
honest."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from include.analysis import Analysis
from include.pipeline import analyse, publish_report
from include.records import AccuracyResult
from tests.analysis.analysis_factory import make_record

EVIL = '<script>alert("pwned")</script>|x'


def _records():
    return [
        make_record("gpu-a"), make_record("gpu-b", tokens_per_second=4950.0, samples_per_second=38.7),
        make_record("gpu-a", branch="distributed", samples=1500),
        make_record("gpu-b", branch="distributed", samples=1500, tokens_per_second=4950.0, start_offset_s=20.0),
        make_record("gpu-c", status="failed", error="vLLM engine died: CUDA error: out of memory"),
        make_record("gpu-b", scenario="Server", tokens_per_second=4500.0, ttft_ms=(300.0, 2300.0), valid=False,
                    invalid_reasons=["performance constraints not satisfied"]),
        make_record("a30-node", accelerator="NVIDIA A30", memory_gib=24.0, samples_per_second=106.0,
                    tokens_per_second=106.0 * 128),
    ]


def _build(records, tmp_path: Path, run_id: str = "manual__2026-11-28"):
    analysis = analyse(records, run_id=run_id, history_url=None, threshold_pct=5.0)
    paths = publish_report(analysis, tmp_path)
    return analysis, paths, paths.markdown.read_text(), paths.html.read_text()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One report of the mixed records, shared by the tests that only read it (charts take seconds)."""
    return _build(_records(), tmp_path_factory.mktemp("mixed"))


def test_report_contains_the_computed_numbers(mixed) -> None:
    analysis, paths, md, html = mixed
    [scaling] = analysis.scaling
    for text in (md, html):
        assert f"{scaling.aggregate_tokens_per_second:,.1f}" in text
        assert f"{scaling.window_s:,.1f}" in text
        assert f"{100 * scaling.efficiency:.1f}%" in text
        assert "9,969.0" in text                                       # sum of the single-node tokens/s
        assert "5,019.0" in text and "4,950.0" in text
        assert "INVALID" in text and "performance constraints not satisfied" in text
        assert "IMPLAUSIBLE" in text                                   # the A30 figure
        assert "regressions not checked: no history store given" in text
    assert [p.name for p in paths.charts.values()] == ["performance_analysis.png", "scaling_analysis.png",
                                                        "throughput_comparison.png", "latency.png", "trend.png"]
    for name in ("report.md", "report.html", "analysis.json", "trend.png"):
        assert f"- {name}" in md                                       # the list of files produced


def test_failed_node_is_shown_as_failed_with_its_error(mixed) -> None:
    _, _, md, html = mixed
    assert "**FAILED** single/gpu-c/Offline/performance: vLLM engine died: CUDA error: out of memory" in md
    assert "| gpu-c | single | Offline | **FAILED** · compliance unknown |" in md
    assert re.search(r'<span class="FAILED">FAILED</span> single/gpu-c/Offline/performance: vLLM engine died', html)


def test_the_verdict_headline_is_the_first_thing_said(mixed) -> None:
    analysis, _, md, html = mixed
    headline = analysis.verdict.headline
    assert headline.startswith("FAILED: 1 of 7 runs failed or missing (single/gpu-c/Offline/performance")
    assert "INVALID: 1 of 6 performance runs" in headline and "IMPLAUSIBLE: single/a30-node/Offline" in headline
    assert md.splitlines()[2] == f"**Verdict: {headline}**"
    assert f"<strong>Verdict: {headline}</strong>" in html.replace("&#39;", "'")
    assert json.loads((_analysis_json(mixed)).read_text())["verdict"]["headline"] == headline


def _analysis_json(mixed) -> Path:
    return mixed[1].html.parent / "analysis.json"


def test_loadgen_errors_make_a_run_not_submission_grade(tmp_path: Path) -> None:
    """LoadGen's 'Multiple conf files' error: shown in the report and the verdict, not only in analysis.json."""
    import dataclasses

    record = make_record("gpu-a")
    record = dataclasses.replace(record, loadgen=dataclasses.replace(record.loadgen, errors=[
        "error_invalid_config: Multiple conf files are used. This is not valid for official submission."]))
    analysis, _, md, html = _build([record], tmp_path)
    [verdict] = analysis.verdict.runs
    assert verdict.submission_grade is False and verdict.state == "VALID"
    assert "not submission-grade: LoadGen errors error_invalid_config in 1 run(s)" in analysis.verdict.headline
    for text in (md, html):
        assert "LoadGen errors and warnings" in text and "Multiple conf files are used" in text


def test_malicious_node_name_is_escaped_in_html(tmp_path: Path) -> None:
    records = [make_record(EVIL), make_record(EVIL, branch="distributed"),
               make_record("ok", status="failed", error='<img src=x onerror="alert(1)">')]
    _, _, md, html = _build(records, tmp_path, run_id="<b>run</b>")
    assert "<script>" not in html and "onerror=\"alert" not in html and "<b>run</b>" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;|x" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    # Markdown: the pipe cannot break the table, raw HTML cannot run where the Markdown is rendered
    assert "<script>" not in md and "&lt;script>" in md and "\\|x" in md


def test_subset_profile_is_called_not_mlperf_compliant(tmp_path: Path) -> None:
    records = [make_record("cpu-0", accelerator="Intel Xeon", accel_kind="cpu", memory_gib=None,
                           model_name="tiny-llama", load_format="dummy", total_sample_count=64, dataset_size=64,
                           samples=64, tokens_per_second=4500.0, samples_per_second=35.0,
                           loadgen_settings={"min_duration": 0, "min_query_count": 64})]
    analysis, _, md, html = _build(records, tmp_path)
    assert analysis.verdict.compliance == "not compliant"
    for text in (md, html):
        assert "MLPerf compliance: not compliant" in text
        assert "sample subset, 64 of 13,368 samples" in text
        assert "min_duration shortened to 0 s (MLPerf: 600 s)" in text
        assert "min_query_count / samples per query 64 (MLPerf: 13,368)" in text
        assert "dummy (random) weights" in text
        assert "CPU run" in text


@pytest.mark.parametrize("engine", [{"dtype": "bfloat16", "enable_prefix_caching": True},
                                    {"dtype": "bfloat16"}])  # results from before the SUT recorded it: vLLM's default
def test_prefix_caching_is_called_not_mlperf_comparable(tmp_path: Path, engine) -> None:
    record = make_record("gpu-a", engine=engine)
    assert record.result["backend"] == "vllm"
    analysis, _, md, html = _build([record], tmp_path)
    assert analysis.verdict.compliance == "not compliant"
    for text in (md, html):
        assert "prompt prefix caching on (LoadGen repeats samples" in text and "overstated): gpu-a Offline performance" in text


def test_equal_issue_off_is_called_not_mlperf_compliant(tmp_path: Path) -> None:
    """A search-qps probe turns LoadGen's equal-issue mode off to stay short; MLPerf's llama3.1-8b rules need it."""
    probe = make_record("gpu-a", "Server", loadgen_settings={"sample_concatenate_permutation": False})
    analysis, _, md, _ = _build([probe], tmp_path)
    assert analysis.verdict.compliance == "not compliant"
    assert "- equal issue off (sample_concatenate_permutation=0" in md and "gpu-a Server performance" in md


def test_engine_settings_are_shown_with_the_infrastructure(tmp_path: Path) -> None:
    engine = {"dtype": "bfloat16", "quantization": "fp8", "max_num_batched_tokens": 32768,
              "compilation_config": {"max_cudagraph_capture_size": 1024}, "enable_prefix_caching": False}
    _, _, md, html = _build([make_record("gpu-a", engine=engine)], tmp_path)
    settings = 'compilation_config={"max_cudagraph_capture_size":1024}, enable_prefix_caching=false, ' \
               'max_num_batched_tokens=32768'
    assert f"| bfloat16 | fp8 | none | {settings} |" in md          # no engine preset
    assert settings.replace('"', "&#34;") in html


def test_full_profile_is_called_compliant(tmp_path: Path) -> None:
    analysis, _, md, _ = _build([make_record("gpu-a")], tmp_path)
    assert (analysis.verdict.compliance, analysis.verdict.compliance_reasons) == ("compliant", [])
    assert "**MLPerf compliance: compliant**" in md and "not compliant" not in md
    assert "No distributed runs: no scaling figure." in md


def test_accuracy_verdicts(tmp_path: Path) -> None:
    subset = AccuracyResult(rouge1=38.12, rouge2=15.5, rougeL=24.1, rougeLsum=35.2, gen_len=30012, gen_num=64,
                            full_dataset=False, target_set=None, passed=None,
                            verdict="targets not applicable: 64 of 13,368 samples")
    dummy = AccuracyResult(rouge1=0.8, rouge2=0.0, rougeL=0.7, rougeLsum=0.7, gen_len=51200, gen_num=64,
                           full_dataset=False, target_set=None, passed=None, verdict="meaningless: dummy weights")
    full = AccuracyResult(rouge1=38.7898, rouge2=15.9437, rougeL=24.5735, rougeLsum=35.8053, gen_len=8163079,
                          gen_num=13368, full_dataset=True, target_set="datacenter", passed=True,
                          verdict="all targets met (datacenter)")
    records = [make_record("n1", mode="accuracy", accuracy=subset, total_sample_count=64),
               make_record("n2", mode="accuracy", accuracy=dummy, load_format="dummy"),
               make_record("n3", mode="accuracy", accuracy=full),
               make_record("n4", mode="accuracy")]
    _, _, md, html = _build(records, tmp_path)
    for text in (md, html):
        assert "not applicable: targets not applicable: 64 of 13,368 samples" in text
        assert "meaningless: dummy (random) weights" in text
        assert "PASS: all targets met (datacenter)" in text and "38.7898" in text and "8,163,079" in text
        assert "not scored: no model directory or data set given" in text


def test_html_is_self_contained(mixed) -> None:
    _, paths, _, html = mixed
    assert html.count('src="data:image/png;base64,') == 5
    assert not re.search(r'(src|href)="(http|//|[a-z_]+\.png)', html)
    assert paths.html.stat().st_size > 50_000


def test_analysis_round_trips_through_json(mixed) -> None:
    analysis, paths, _, _ = mixed
    data = json.loads(json.dumps(analysis.to_dict()))
    again = Analysis.from_dict(data)
    assert again.scaling == analysis.scaling
    assert again.plausibility == analysis.plausibility
    assert again.records == analysis.records
    assert again.verdict == analysis.verdict
    assert json.loads((paths.html.parent / "analysis.json").read_text())["run_id"] == "manual__2026-11-28"


def test_empty_run_still_reports(tmp_path: Path) -> None:
    analysis, paths, md, html = _build([], tmp_path)
    assert "0 SUT runs" in md and "No performance-mode runs." in md and "no run was readable" in md
    assert analysis.verdict.headline == "FAILED: no run was readable" and analysis.verdict.compliance == "unknown"
    assert all(p.exists() for p in paths.charts.values())


def test_artefact_list_says_which_files_are_gone(tmp_path: Path) -> None:
    """A copy of a run without what the SUT wrote (a trace left out of a transfer) must not list it as there."""
    run_dir = tmp_path / "artifacts" / "single" / "gpu-a" / "Offline" / "performance"
    run_dir.mkdir(parents=True)
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        (run_dir / name).write_text("x")
    record = dataclasses.replace(make_record("gpu-a"), run_dir=str(run_dir))
    _, _, md, html = _build([record], tmp_path / "report")
    for text in (md, html):
        assert f"{run_dir / 'mlperf_log_detail.txt'}<" in text or f"{run_dir / 'mlperf_log_detail.txt'}\n" in text
        assert f"{run_dir / 'result.json'} (written by the SUT, absent here)" in text
