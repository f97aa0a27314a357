"""The demo records the committed H200 reference run (reference/h200/) in the history, rendered by the pipeline."""
from include.demo import REFERENCE_RUNS, import_reference
from include.history import HistoryStore


def test_the_reference_run_is_rendered_and_recorded(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    reports = import_reference(url, tmp_path)
    configurations = sorted(p.name for p in REFERENCE_RUNS.iterdir() if (p / "single").is_dir())
    assert [r.parent.name for r in reports] == configurations and all(r.is_file() for r in reports)
    runs = {run.run_id: run for run in HistoryStore(url).runs()}
    assert set(runs) == {f"h200-reference-{name}" for name in configurations}
    fp8 = HistoryStore(url).results(run_id="h200-reference-offline-fp8")
    assert [(r.accelerator, r.scenario, r.valid, r.tokens_per_second) for r in fp8] == [
        ("NVIDIA H200", "Offline", True, 7394.87)]
    # prompts served from vLLM's prefix cache beat the H200's compute bound: the report must say so
    cached = (tmp_path / "reference-h200" / "offline-fp8-prefix-cache" / "report.md").read_text()
    assert "IMPLAUSIBLE" in cached and "IMPLAUSIBLE" not in (tmp_path / "reference-h200/offline-fp8/report.md").read_text()
    # the run of MLPerf's full 600 s is not called shortened; the bf16 run made with vLLM's prefix cache on is
    # called not comparable, the one made without it is not
    full = (tmp_path / "reference-h200" / "offline-fp8-600s" / "report.md").read_text()
    assert "min_duration shortened" not in full and "dummy (random) weights" in full
    cached_bf16 = (tmp_path / "reference-h200" / "offline-bf16-prefix-cache" / "report.md").read_text()
    bf16 = (tmp_path / "reference-h200" / "offline-bf16" / "report.md").read_text()
    assert "prompt prefix caching on" in cached_bf16 and "prompt prefix caching on" not in full + bf16
    # a 40 s search probe is called shortened; the full-query run that overturned its VALID verdict says why
    probe = (tmp_path / "reference-h200" / "search-server-fp8-qps55.98" / "report.md").read_text()
    assert "min_duration shortened" in probe and "equal issue off" in probe and "**VALID**" in probe
    confirm = HistoryStore(url).results(run_id="h200-reference-server-fp8-qps55.98")
    assert [(r.scenario, r.valid) for r in confirm] == [("Server", False)]
    # the tuned engine settings behind the fastest Offline run are in its report
    tuned = (tmp_path / "reference-h200" / "offline-fp8-cg1024-mnbt32k" / "report.md").read_text()
    assert 'compilation_config={"max_cudagraph_capture_size":1024}' in tuned and "max_num_batched_tokens=32768" in tuned
    # the tuned settings over MLPerf's full 600 s carry the Offline headline; the full-query Interactive run that
    # confirmed the 30.5 QPS probe is recorded under Interactive, VALID, and still called shortened (min_duration 45 s)
    tuned_600s = HistoryStore(url).results(run_id="h200-reference-offline-fp8-cg1024-mnbt32k-600s")
    assert [(r.scenario, r.valid, r.tokens_per_second) for r in tuned_600s] == [("Offline", True, 7940.02)]
    tuned_report = (tmp_path / "reference-h200" / "offline-fp8-cg1024-mnbt32k-600s" / "report.md").read_text()
    assert "min_duration shortened" not in tuned_report
    interactive = HistoryStore(url).results(run_id="h200-reference-interactive-fp8-qps30.5")
    assert [(r.scenario, r.valid, r.tokens_per_second) for r in interactive] == [("Interactive", True, 3935.54)]
    report = (tmp_path / "reference-h200" / "interactive-fp8-qps30.5" / "report.md").read_text()
    assert "min_duration shortened" in report and "equal issue off" not in report
