"""include.pipeline and `python -m include report`: from a folder of artefacts (real LoadGen logs) to the report,
and regressions against a history store on SQLite."""
from __future__ import annotations

import contextlib
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

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "mlperf-v5.1-redhat-xe8640-h100-vllm"
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


def test_parse_and_score_read_every_run(artefacts: Path, tmp_path: Path) -> None:
    records = pipeline.score(pipeline.parse_folder(artefacts), str(tmp_path / "no-model"),
                             str(tmp_path / "no-data.json"))
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
    assert proc.returncode == 1, proc.stderr        # a failed and a missing run: the CLI says so in its status
    printed = proc.stdout.splitlines()
    assert f"report: {out / 'report.md'}" in printed and f"report: {out / 'report.html'}" in printed
    assert f"chart trend: {out / 'trend.png'}" in printed
    md = (out / "report.md").read_text()
    assert "5,777.1" in md and "5,104.0" in md                       # LoadGen's figures from the real logs
    assert "# MLPerf Inference llama3.1-8b: run manual__2026-11-28T06" in md
    assert "**FAILED** single/h200-1/Offline/performance" in md and "CUDA out of memory" in md
    assert "**MISSING** distributed/h200-2/Offline/performance" in md
    assert "2 run(s) failed or missing" in proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("verdict: FAILED: 2 of 5 runs failed or missing")
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
    from include.apps.cli import main

    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize("broken", ["missing", "not json", "schema 99"])
def test_an_unreadable_result_is_never_called_compliant(tmp_path: Path, capsys, broken: str) -> None:
    """result.json missing, unreadable or of an unknown schema: the report says so, compliance is unknown, and
    the CLI exits non-zero (before, it said 'Profile: MLPerf-compliant' and exited 0)."""
    from include.apps.cli import main

    run_dir = tmp_path / "run" / "single" / "gpu-a" / "Offline" / "performance"
    run_dir.mkdir(parents=True)
    if broken == "not json":
        (run_dir / "result.json").write_text("{not json")
    elif broken == "schema 99":
        (run_dir / "result.json").write_text(json.dumps({"schema_version": 99}))
    code = main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "report.md").read_text()
    assert code == 3, capsys.readouterr()
    assert "MLPerf-compliant" not in md and "compliance: compliant" not in md
    assert "**MLPerf compliance: unknown.**" in md
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["verdict"]["compliance"] == "unknown"


def test_a_killed_sut_is_failed_with_its_exit_code_and_log(tmp_path: Path) -> None:
    """The runner records how the SUT ended; the report names the exit code and the log (not 'missing')."""
    from include.results.run_artifacts import write_runner_exit

    run_dir = tmp_path / "run" / "single" / "gpu-a" / "Offline" / "performance"
    write_runner_exit(run_dir, exit_code=-9, log_path="/artifacts/run/single/gpu-a/Offline/performance.sut.log",
                      reason="single/gpu-a/Offline/performance: exit code -9")
    [record] = pipeline.parse_folder(tmp_path / "run")
    assert (record.status, record.exit_code) == ("failed", -9)
    analysis = pipeline.analyse([record], run_id="r", history_url=None)
    [verdict] = analysis.verdict.runs
    assert verdict.state == "FAILED" and "SIGKILL" in verdict.cause and "performance.sut.log" in verdict.cause
    md = pipeline.publish_report(analysis, tmp_path / "out").markdown.read_text()
    assert "**FAILED** single/gpu-a/Offline/performance" in md and "SIGKILL" in md and "performance.sut.log" in md


def test_a_folder_of_loadgen_logs_alone_is_a_result(tmp_path: Path) -> None:
    """A published submission (LoadGen logs, no result.json): parsed, reported, infrastructure unknown."""
    analysis, paths = pipeline.run(FIXTURES, tmp_path / "out", run_id="published", history_url=None)
    perf = {r.scenario: r for r in analysis.records if r.mode == "performance"}
    assert perf["Offline"].loadgen.tokens_per_second == pytest.approx(5777.08, rel=1e-4)
    assert perf["Server"].status == "completed" and perf["Server"].result is None
    assert [v.state for v in analysis.verdict.runs if v.mode == "performance"] == ["VALID", "VALID"]
    assert analysis.verdict.compliance == "unknown"
    md = paths.markdown.read_text()
    assert "unknown (no result.json)" in md and "(limit 2,000)" in md
    # the published accuracy.txt is read as numbers (no model or data set needed) and judged on the full data set
    acc = {r.scenario: r.accuracy for r in analysis.records if r.mode == "accuracy"}
    assert acc["Offline"].gen_num == 13368 and acc["Offline"].rougeL > 24 and acc["Offline"].passed is True

def test_regression_against_recorded_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    day0 = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
    for i, tps in enumerate((5010.0, 4995.0, 5019.0, 5003.0)):
        run_id = f"scheduled__{i}"
        records = [make_record("gpu-a", tokens_per_second=tps, run_id=run_id)]
        analysis = pipeline.analyse(records, run_id=run_id, history_url=None)
        meta = pipeline.run_meta(analysis, logical_date=day0 + timedelta(days=i), dag_id="mlperf_llama31_8b",
                                 trigger="scheduled")
        pipeline.record(url, analysis, meta)
    # the same settings but FP8: another comparability key, never a baseline of the bf16 runs
    fp8 = {"dtype": "bfloat16", "quantization": "fp8", "tensor_parallel_size": 1, "max_num_seqs": 256,
           "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9, "max_model_len": 2668,
           "enable_prefix_caching": False}
    other = pipeline.analyse([make_record("gpu-a", tokens_per_second=9000.0, engine=fp8, run_id="fp8")],
                             run_id="fp8", history_url=None)
    pipeline.record(url, other, pipeline.run_meta(other, logical_date=day0 + timedelta(days=5)))

    current = [make_record("gpu-a", tokens_per_second=4300.0, samples_per_second=33.6, run_id="scheduled__9")]
    analysis = pipeline.analyse(current, run_id="scheduled__9", history_url=url, threshold_pct=5.0,
                                logical_date=day0 + timedelta(days=9))
    found = {r.metric: r for r in analysis.regressions}
    assert set(found) == {"tokens_per_second", "samples_per_second"}       # latencies and ROUGE unchanged
    regression = found["tokens_per_second"]
    assert regression.metric == "tokens_per_second" and regression.node == "gpu-a"
    assert regression.baseline == pytest.approx(5006.5)                    # the FP8 run is not in the baseline
    assert regression.change_pct == pytest.approx((4300.0 / 5006.5 - 1) * 100, rel=1e-6)
    assert "1 of 1 runs compared with earlier runs of the same settings" in analysis.notes[0]
    # the trend: the 4 recorded runs of the same settings + the current (the FP8 run is another series)
    assert len([p for p in analysis.history if p["node"] == "gpu-a"]) == 5
    assert "2 regression(s)" in analysis.verdict.headline
    paths = pipeline.publish_report(analysis, tmp_path / "out")
    md = paths.markdown.read_text()
    assert "| tokens_per_second | gpu-a | single | Offline | 4,300.00 | 5,006.50 | -14.1% |" in md


def test_recording_twice_keeps_one_copy_and_the_verdict(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    analysis = pipeline.analyse([make_record("gpu-a", valid=False)], run_id="r1", history_url=None)
    for _ in range(2):
        pipeline.record(url, analysis, pipeline.run_meta(analysis, report_path="/r/report.html"))
    from include.history import HistoryStore

    store = HistoryStore(url, readonly=True)
    try:
        [run] = store.runs()
        assert run.verdict == analysis.verdict.headline and run.report_path == "/r/report.html"
        [row] = store.results()
        assert row.state == "INVALID" and row.verdict == analysis.verdict.runs[0].headline
    finally:
        store.dispose()


def test_unreachable_history_is_a_note_not_a_crash(tmp_path: Path) -> None:
    analysis = pipeline.analyse([make_record()], run_id="r1",
                                history_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert analysis.regressions == []
    assert analysis.notes[0].startswith("regressions not checked: history store unavailable")


def test_the_record_step_keeps_the_runs_own_time_and_a_relative_report_path(tmp_path: Path) -> None:
    """An imported run is dated by its SUT's start (result.json), and its report link survives a moved root."""
    from include.history import HistoryStore
    from tests.analysis.analysis_factory import T0

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    analysis = pipeline.analyse([make_record("gpu-a", start_offset_s=60.0)], run_id="imported", history_url=None)
    report = tmp_path / "artifacts" / "imported" / "report" / "report.html"
    pipeline.record(url, analysis, pipeline.run_meta(analysis, report_path=report,
                                                     artifacts_root=tmp_path / "artifacts"))
    store = HistoryStore(url, readonly=True)
    try:
        run = store.run("imported")
        assert run.started_at == run.run_at == T0 + timedelta(seconds=60)      # not the import's time
        assert run.report_path == "imported/report/report.html"
    finally:
        store.dispose()


def test_cli_record_refuses_a_run_id_the_dag_recorded(artefacts: Path, tmp_path: Path, capsys) -> None:
    from include.apps.cli import main
    from include.history import HistoryStore

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    dag = pipeline.analyse([make_record("gpu-a")], run_id="scheduled__1", history_url=None)
    when = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
    pipeline.record(url, dag, pipeline.run_meta(dag, dag_id="mlperf_llama31_8b", trigger="scheduled",
                                                logical_date=when))
    rc = main(["report", str(artefacts), "--out", str(tmp_path / "out"), "--history-url", url, "--record",
               "--run-id", "scheduled__1"])
    assert rc == 4                                       # the report is written, the run not recorded
    printed = capsys.readouterr()
    assert f"report: {tmp_path / 'out' / 'report.html'}" in printed.out.splitlines()
    assert printed.out.splitlines()[-1].startswith("verdict: ")
    err = printed.err.splitlines()[-1]
    assert "not recorded: run id 'scheduled__1' was recorded by the DAG" in err and "--run-id" in err
    store = HistoryStore(url, readonly=True)
    try:
        run = store.run("scheduled__1")
        assert (run.dag_id, run.trigger, run.logical_date, run.results_total) == (
            "mlperf_llama31_8b", "scheduled", when, 1)
    finally:
        store.dispose()


# -- the CLI's bad input and failures: one line, a documented exit status, the report's paths whenever it was written

@contextlib.contextmanager
def read_only(path: Path):
    """The file cannot be written, even by root: immutable (chattr +i) as root, mode 0444 otherwise."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


@pytest.mark.parametrize("where", ["is a file", "under a file"])
def test_out_that_is_a_file_is_bad_usage(artefacts: Path, tmp_path: Path, capsys, where: str) -> None:
    """Before: a traceback (FileExistsError / NotADirectoryError) and exit 1."""
    from include.apps.cli import main

    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    out = blocker if where == "is a file" else blocker / "report"
    assert main(["report", str(artefacts), "--out", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.err == f"error: --out {out}: {blocker} is a file, not a folder\n" and printed.out == ""
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5"])
def test_threshold_must_be_a_finite_percentage(artefacts: Path, tmp_path: Path, capsys, value: str) -> None:
    """Before: accepted; nan judged nothing a regression, -5 everything."""
    from include.apps.cli import main

    assert main(["report", str(artefacts), "--out", str(tmp_path / "out"), f"--threshold-pct={value}"]) == 2
    printed = capsys.readouterr()
    assert printed.err == f"error: --threshold-pct must be a finite percentage >= 0, not {value}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["corrupt", "read-only"])
def test_a_history_that_cannot_be_written_leaves_the_report_and_says_so(artefacts: Path, tmp_path: Path, capsys,
                                                                        damage: str) -> None:
    """Before: a traceback, exit 1, the report written but its paths and verdict not printed."""
    from include.apps.cli import main

    path = tmp_path / "history.sqlite"
    url = f"sqlite:///{path}"
    earlier = pipeline.analyse([make_record("gpu-a")], run_id="earlier", history_url=None)
    pipeline.record(url, earlier, pipeline.run_meta(earlier))
    if damage == "corrupt":
        path.write_bytes(b"this is not a database" * 200)
    before = path.read_bytes()
    out = tmp_path / "out"
    with read_only(path) if damage == "read-only" else contextlib.nullcontext():
        rc = main(["report", str(artefacts), "--out", str(out), "--history-url", url, "--record"])
    printed = capsys.readouterr()
    assert rc == 4, printed
    lines = printed.out.splitlines()
    assert f"report: {out / 'report.md'}" in lines and f"report: {out / 'report.html'}" in lines
    assert lines[-1].startswith("verdict: FAILED: 2 of 5 runs failed or missing")
    assert not any(line.startswith("recorded:") for line in lines)
    last = printed.err.splitlines()[-1]
    assert last.startswith(f"error: not recorded: history database {url} unavailable while trying to "), last
    assert ("readonly database" if damage == "read-only" else "file is not a database") in last
    assert "Traceback" not in printed.err and (out / "report.html").is_file()
    assert path.read_bytes() == before


def test_a_dag_runs_folder_is_recorded_under_its_own_run_id(tmp_path: Path, capsys) -> None:
    """The folder is the run id made file-safe (plan.run_slug); its plan.json holds the real one. Before, --record
    without --run-id stored the folder's name: a second copy of a run the DAG had recorded."""
    from include.apps.cli import main
    from include.history import HistoryStore
    from include.planning.plan import run_slug

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    ids = {"dag": "manual__2026-11-28T06:00:00+00:00", "unrecorded": "manual__2026-11-29T06:00:00+00:00"}
    folders = {}
    for name, run_id in ids.items():
        folder = folders[name] = tmp_path / "artifacts" / run_slug(run_id)
        record = make_record("xe8640", accelerator="NVIDIA H100 80GB HBM3", memory_gib=79.6, engine=H100_ENGINE,
                             tokens_per_second=5777.08, samples_per_second=45.1334, samples=40104, run_id=run_id)
        _write_run(folder, "single", "xe8640", "Offline", "performance", record,
                   FIXTURES / "Offline" / "performance" / "run_1")
        (folder / "plan.json").write_text(json.dumps({"run_id": run_id, "run_dir": str(folder)}))
        assert folder.name != run_id
    dag = pipeline.analyse([make_record("gpu-a", run_id=ids["dag"])], run_id=ids["dag"], history_url=None)
    pipeline.record(url, dag, pipeline.run_meta(dag, dag_id="mlperf_llama31_8b", trigger="manual",
                                                logical_date=datetime(2026, 11, 28, 6, tzinfo=timezone.utc)))

    assert main(["report", str(folders["dag"]), "--out", str(tmp_path / "o1"), "--history-url", url,
                 "--record"]) == 4
    assert f"not recorded: run id {ids['dag']!r} was recorded by the DAG" in capsys.readouterr().err
    assert main(["report", str(folders["unrecorded"]), "--out", str(tmp_path / "o2"), "--history-url", url,
                 "--record"]) == 0
    assert f"recorded: {ids['unrecorded']} in " in capsys.readouterr().out
    store = HistoryStore(url, readonly=True)
    try:
        assert sorted(r.run_id for r in store.runs()) == sorted(ids.values())      # no copy under a folder name
        assert store.run(ids["dag"]).trigger == "manual" and store.run(ids["unrecorded"]).trigger == "cli"
    finally:
        store.dispose()
