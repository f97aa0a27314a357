"""include.pipeline and `python -m include report`: from a folder of artefacts (real LoadGen logs) to the report,
and regressions against a history store on SQLite."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from include import pipeline
from tests.analysis.analysis_factory import make_record

FIXTURES = Path("/work/shared/fixtures/mlperf-v5.1-redhat-xe8640-h100-vllm")
REPO = Path(__file__).resolve().parents[2]
H100_ENGINE = {"dtype": "bfloat16", "quantization": "fp8", "tensor_parallel_size": 1, "max_num_seqs": 1024,
               "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9, "max_model_len": 2668}


def _write_run(root: Path, branch: str, label: str, scenario: str, mode: str, record=None, logs: Path | None = None):
    run_dir = root / branch / label / scenario / mode
    run_dir.mkdir(parents=True)
    if logs is not None:
        for f in logs.iterdir():
            if f.is_file():
                shutil.copy(f, run_dir / f.name)
    if record is not None:
        (run_dir / "result.json").write_text(json.dumps(record.result))
    return run_dir


@pytest.fixture()
def artefacts(tmp_path: Path) -> Path:
    """One pipeline run: the published H100 logs as node xe8640's single runs, a failed and a missing node."""
    pytest.importorskip("include.loadgen_logs")
    root = tmp_path / "artifacts" / "manual__2026-11-28T06"
    for scenario, tps, sps, n in (("Offline", 5777.08, 45.1334, 40104), ("Server", 5103.99, 39.56, 26736)):
        record = make_record("xe8640", scenario=scenario, accelerator="NVIDIA H100 80GB HBM3", memory_gib=79.6,
                             engine=H100_ENGINE, tokens_per_second=tps, samples_per_second=sps, samples=n)
        _write_run(root, "single", "xe8640", scenario, "performance", record,
                   FIXTURES / scenario / "performance" / "run_1")
    acc = make_record("xe8640", mode="accuracy", accelerator="NVIDIA H100 80GB HBM3", engine=H100_ENGINE)
    _write_run(root, "single", "xe8640", "Offline", "accuracy", acc, FIXTURES / "Offline" / "accuracy")
    failed = make_record("h200-1", status="failed", error="vLLM engine failed to start: CUDA out of memory")
    _write_run(root, "single", "h200-1", "Offline", "performance", failed)
    _write_run(root, "distributed", "h200-2", "Offline", "performance")            # the pod never wrote result.json
    return root


def test_collect_runs_reads_and_scores(artefacts: Path, tmp_path: Path) -> None:
    records = pipeline.collect_runs(str(artefacts), str(tmp_path / "no-model"), str(tmp_path / "no-data.json"))
    by_key = {(r.branch, r.node, r.scenario, r.mode): r for r in records}
    offline = by_key[("single", "xe8640", "Offline", "performance")]
    assert offline.status == "completed" and offline.valid
    assert offline.loadgen.tokens_per_second == pytest.approx(5777.08)
    assert by_key[("single", "h200-1", "Offline", "performance")].status == "failed"
    assert by_key[("distributed", "h200-2", "Offline", "performance")].status == "missing"
    accuracy = by_key[("single", "xe8640", "Offline", "accuracy")]
    assert accuracy.accuracy is None and accuracy.error.startswith("accuracy not scored:")   # truncated log refused


def test_cli_rebuilds_the_report(artefacts: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    proc = subprocess.run([sys.executable, "-m", "include", "report", str(artefacts), "--out", str(out),
                           "--history-url", url, "--record"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    assert f"report: {out / 'report.md'}" in printed and f"report: {out / 'report.html'}" in printed
    assert f"chart trend: {out / 'trend.png'}" in printed
    md = (out / "report.md").read_text()
    assert "5,777.1" in md and "5,104.0" in md                       # LoadGen's figures from the real logs
    assert "# MLPerf Inference llama3.1-8b: run manual__2026-11-28T06" in md
    assert "**FAILED** h200-1" in md and "CUDA out of memory" in md
    assert "**MISSING** h200-2" in md
    assert "plausible" in md and "IMPLAUSIBLE" not in md
    assert "accuracy not scored" in md
    assert "recorded: manual__2026-11-28T06" in proc.stdout
    from include.history import HistoryStore

    store = HistoryStore(url, readonly=True)
    try:
        [run] = store.runs()
        assert run.run_id == "manual__2026-11-28T06" and run.status == "partial" and run.results_failed == 2
        assert run.report_path == str(out / "report.html")
    finally:
        store.dispose()


def test_cli_refuses_a_missing_folder(tmp_path: Path) -> None:
    from include.cli import main

    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_regression_against_recorded_history(tmp_path: Path) -> None:
    pytest.importorskip("alembic")
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    day0 = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
    for i, tps in enumerate((5010.0, 4995.0, 5019.0, 5003.0)):
        run_id = f"scheduled__{i}"
        records = [make_record("gpu-a", tokens_per_second=tps, run_id=run_id)]
        analysis = pipeline.analyse(records, None, run_id)
        meta = pipeline.run_meta_for(run_id, records, analysis, logical_date=day0 + timedelta(days=i),
                                     dag_id="mlperf_llama31_8b", trigger="scheduled")
        pipeline.record_history(url, dataclasses.asdict(meta), [r.to_dict() for r in records], analysis.to_dict())

    current = [make_record("gpu-a", tokens_per_second=4300.0, samples_per_second=33.6, run_id="scheduled__9")]
    analysis = pipeline.analyse(current, url, "scheduled__9", 5.0, logical_date=day0 + timedelta(days=9))
    found = {r.metric: r for r in analysis.regressions}
    assert set(found) == {"tokens_per_second", "samples_per_second"}       # latencies and ROUGE unchanged
    regression = found["tokens_per_second"]
    assert regression.metric == "tokens_per_second" and regression.node == "gpu-a"
    assert regression.baseline == pytest.approx(5006.5)
    assert regression.change_pct == pytest.approx((4300.0 / 5006.5 - 1) * 100, rel=1e-6)
    assert "1 of 1 runs compared with comparable history" in analysis.notes[0]
    assert len([p for p in analysis.history if p["node"] == "gpu-a"]) == 5           # 4 recorded + the current
    paths = pipeline.publish_report(analysis, None, tmp_path / "out")
    md = paths.markdown.read_text()
    assert "| tokens_per_second | gpu-a | single | Offline | 4,300.00 | 5,006.50 | -14.1% |" in md


def test_unreachable_history_is_a_note_not_a_crash(tmp_path: Path) -> None:
    analysis = pipeline.analyse([make_record()], "postgresql+psycopg://nobody@127.0.0.1:1/none", "r1")
    assert analysis.regressions == []
    assert analysis.notes[0].startswith("regressions not checked: history store unavailable")
