"""The LoadGen harness with real LoadGen and a stand-in backend (no vLLM): fast checks of the reporting paths."""
import json
import threading

import numpy as np
import pytest

from mlperf_sut.backends.base import Backend
from mlperf_sut.harness import BackendFailed, Harness
from mlperf_sut.progress import Progress
from mlperf_sut.qsl import QuerySampleLibrary
from mlperf_sut.settings import Mode, Override, Scenario, build_settings, default_user_conf

SAMPLES = 8


class EchoBackend(Backend):
    """Answers each query on another thread with its prompt's last three ids; optionally fails on one query."""

    name = "echo"

    def __init__(self, fail_on_index: int | None = None) -> None:
        self.fail_on_index = fail_on_index
        self.threads: list[threading.Thread] = []

    def start(self, reporter) -> None:
        self.reporter = reporter

    def submit(self, queries) -> None:
        for query in queries:
            thread = threading.Thread(target=self._answer, args=(query,))
            thread.start()
            self.threads.append(thread)

    def _answer(self, query) -> None:
        if query.sample_index == self.fail_on_index:
            self.reporter.fail(RuntimeError("engine died"))
            return
        tokens = list(query.prompt_token_ids[-3:])
        self.reporter.first_token(query, tokens[0])
        self.reporter.complete(query, tokens)

    def stop(self) -> None:
        for thread in self.threads:
            thread.join()


@pytest.fixture()
def qsl(tmp_path):
    path = tmp_path / "cnn_eval.json"
    path.write_text(json.dumps([{"tok_input": [1, 2, 100 + i, 200 + i, 300 + i]} for i in range(SAMPLES)]))
    return QuerySampleLibrary.load(path)


def _settings(tmp_path, scenario, mode):
    overrides = [Override.parse(o) for o in ("min_duration=0", f"min_query_count={SAMPLES}", "target_qps=200")]
    return build_settings(scenario, mode, default_user_conf(), overrides, SAMPLES, tmp_path / "merged.conf")


@pytest.mark.parametrize("scenario", [Scenario.SERVER, Scenario.OFFLINE, Scenario.SINGLE_STREAM])
def test_accuracy_log_holds_int32_ids(qsl, tmp_path, scenario):
    backend = EchoBackend()
    harness = Harness(qsl, backend, Progress(0))
    backend.start(harness)
    outcome = harness.run(_settings(tmp_path, scenario, Mode.ACCURACY).test_settings, tmp_path)
    backend.stop()
    entries = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
    logged = {e["qsl_idx"]: np.frombuffer(bytes.fromhex(e["data"]), dtype=np.int32).tolist() for e in entries}
    assert logged == {i: [100 + i, 200 + i, 300 + i] for i in range(SAMPLES)}
    assert (outcome.samples_completed, outcome.output_tokens) == (SAMPLES, 3 * SAMPLES)
    assert outcome.start_utc < outcome.end_utc


def test_backend_failure_ends_the_test_instead_of_hanging(qsl, tmp_path):
    backend = EchoBackend(fail_on_index=2)
    harness = Harness(qsl, backend, Progress(0))
    backend.start(harness)
    with pytest.raises(BackendFailed, match="engine died"):
        harness.run(_settings(tmp_path, Scenario.SERVER, Mode.ACCURACY).test_settings, tmp_path)
    backend.stop()


def test_progress_line():
    progress = Progress(0)
    progress.add_issued(10)
    progress.add_generated(4)
    progress.add_completed(128)
    # Offline: samples generated inside the engine count as done before their tokens reach LoadGen (at the end),
    # so a long run's log shows its sample rate instead of "0 tokens/s" for ten minutes
    line = progress.line()
    assert line.startswith("progress: 4/10 samples done (")
    assert ", 128 output tokens returned to LoadGen (" in line


def test_a_failed_server_run_is_aborted_instead_of_running_out_min_duration(qsl, tmp_path):
    """LoadGen has no abort: after a failure it goes on scheduling Server queries until min_duration. The watchdog
    calls on_abort (the CLI records the failure and exits there) once the grace period has passed."""
    aborted = threading.Event()
    backend = EchoBackend(fail_on_index=1)
    harness = Harness(qsl, backend, Progress(0), on_abort=lambda error: aborted.set(), abort_grace_s=0.5)
    backend.start(harness)
    overrides = [Override.parse(o) for o in ("min_duration=8000", "min_query_count=1", "target_qps=50")]
    settings = build_settings(Scenario.SERVER, Mode.PERFORMANCE, default_user_conf(), overrides, SAMPLES,
                              tmp_path / "merged.conf")
    runner = threading.Thread(target=lambda: pytest.raises(BackendFailed, harness.run, settings.test_settings,
                                                           tmp_path))
    runner.start()
    assert aborted.wait(5), "the watchdog did not abort within 5 s of the failure (LoadGen runs for 8 s)"
    runner.join()
    backend.stop()


def test_several_tests_in_one_process_log_no_error(qsl, tmp_path):
    """search-qps and the GPU benchmarks run many LoadGen tests on one engine. Each test's settings come from
    mlperf.conf plus one user.conf without LoadGen's process-wide conf counter, so no test after the first logs
    error_invalid_config ("Multiple conf files are used") and every summary says "No errors encountered"."""
    backend = EchoBackend()
    for index, scenario in enumerate([Scenario.OFFLINE, Scenario.SERVER, Scenario.OFFLINE]):
        out = tmp_path / f"test-{index}"
        out.mkdir()
        harness = Harness(qsl, backend, Progress(0))
        backend.start(harness)
        harness.run(_settings(out, scenario, Mode.PERFORMANCE).test_settings, out)
        detail = (out / "mlperf_log_detail.txt").read_text()
        assert "error_invalid_config" not in detail and "Multiple conf files" not in detail, out
        assert '"key": "error' not in detail, out
        assert "No errors encountered" in (out / "mlperf_log_summary.txt").read_text(), out
    backend.stop()
