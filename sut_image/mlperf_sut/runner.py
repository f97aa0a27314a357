"""`run`: check every input, start the backend, run LoadGen for each test on it, write each test's result.json (also
when the test fails or the process is stopped by SIGTERM or SIGINT).

An output directory that holds an earlier run's results has them moved aside before anything starts
(`set_aside_earlier`): a result in it is always this process's, never one a killed run left behind.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mlperf_sut import process_guard
from mlperf_sut.backends.base import Backend
from mlperf_sut.engine import EngineOptions, requested_engine, requested_options, requested_preset
from mlperf_sut.errors import EXIT_OK, EXIT_RUNTIME, InputError, print_failure
from mlperf_sut.generation import BENCHMARK_GENERATION
from mlperf_sut.process_clock import ProcessClock
from mlperf_sut.qsl import QuerySampleLibrary, Shard
from mlperf_sut.settings import (AUDIT_CONFIG, COMPLIANCE_TESTS, MLPERF_CONF, TEST06_AUDIT_CONFIG, Mode, Override,
                                 Scenario, also_tests, build_settings, check_user_conf, default_user_conf,
                                 embedded_mlperf_conf)

EFFECTIVE_USER_CONF = "user.conf"
# What a run leaves in its output directory (the SUT's files, LoadGen's logs, what the runner and the pipeline add
# beside them): found there at the start, they are an earlier run's.
EARLIER_FILES = ("result.json", "runner_exit.json", "accuracy.txt", EFFECTIVE_USER_CONF, MLPERF_CONF, AUDIT_CONFIG)
EARLIER_PREFIX = "mlperf_log_"
EARLIER_DIR = ".earlier"     # <output_dir>/../.earlier/<name>-<UTC time>/: hidden, outside the pipeline's layout


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`--endpoint [NODE=]URL` of the http backend."""

    url: str
    node: str

    @classmethod
    def parse(cls, text: str, default_node: str) -> Endpoint:
        node, sep, url = text.partition("=")
        if not sep or "://" in node:
            node, url = default_node, text
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--endpoint {text!r}: expected [NODE=]http://HOST:PORT")
        return cls(url.rstrip("/"), node)


@dataclass(frozen=True, slots=True)
class Test:
    """One LoadGen test of a `run`: the main one (--mode, --compliance-test, --output-dir) or an `--also`."""

    mode: Mode
    compliance_test: str | None          # a compliance test: a performance run under LoadGen's audit.config
    output_dir: Path

    @property
    def name(self) -> str:
        return self.compliance_test or self.mode.label

    @classmethod
    def parse_also(cls, text: str) -> Test:
        """`--also TEST=OUTPUT_DIR`."""
        name, sep, out = text.partition("=")
        if not sep or not out or name not in also_tests():
            raise InputError(f"--also {text!r}: expected TEST=OUTPUT_DIR with TEST one of {', '.join(also_tests())} "
                             "(e.g. --also accuracy=/artifacts/run/Offline/accuracy)")
        if name in COMPLIANCE_TESTS:
            return cls(Mode.PERFORMANCE, name, Path(out))
        return cls(Mode.parse(name), None, Path(out))


@dataclass
class Job:
    """Everything `run` checks before an engine starts. One started backend can serve several LoadGen tests (the
    tests of one `run`, the QPS search, the GPU benchmarks), each measured by `measure` into its own output
    directory."""

    args: argparse.Namespace
    scenario: Scenario
    tests: list[Test]                      # the main test first, then each --also in order
    qsl: QuerySampleLibrary
    backend: Backend
    options: EngineOptions | None          # None for the http backend
    user_conf: Path
    overrides: list[Override]
    endpoints: list[Endpoint]
    shard: Shard | None
    clock: ProcessClock = field(default_factory=ProcessClock)
    written: list = field(default_factory=list)     # (RunResult, output_dir) of every test: finish() stamps the stop
    running: tuple | None = None                    # (RunResult, output_dir, test name, scenario) of the test under way
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mode(self) -> Mode:
        """The main test's mode: what `measure` runs unless told otherwise."""
        return self.tests[0].mode

    def end_test(self, status: str = "completed", error: str | None = None) -> Path | None:
        """The running test's end, once (None if it has already ended): its status, its timing into the process's
        clock, then its result.json (with that clock, so the last result.json written lists every test of the
        process)."""
        process_guard.park_if_stopping()
        with self._lock:
            running, self.running = self.running, None
        if running is None:
            return None
        result, output_dir, name, scenario = running
        if status != "completed":
            result.status, result.error = status, error
        self.clock.test_ended(name, scenario, str(output_dir), result.timing, result.status)
        result.process = self.clock.to_dict()
        return result.write(output_dir)


def prepare(args: argparse.Namespace) -> Job:
    """Check every input (InputError, exit 2), those of every --also test included, and build the backend, without
    starting it; then move an earlier run's files out of every test's output directory."""
    scenario, mode = Scenario.parse(args.scenario), Mode.parse(args.mode)
    if getattr(args, "compliance_test", None) and mode is not Mode.PERFORMANCE:
        raise InputError(f"--compliance-test {args.compliance_test} is a performance run: give --mode performance")
    tests = [Test(mode, getattr(args, "compliance_test", None), args.output_dir),
             *(Test.parse_also(text) for text in getattr(args, "also", []))]
    writable_dir(args.output_dir, "--output-dir")
    owner = {args.output_dir.resolve(): "--output-dir"}
    for test in tests[1:]:
        flag = f"--also {test.name}={test.output_dir}"
        writable_dir(test.output_dir, f"--also {test.name}")
        if test.output_dir.resolve() in owner:
            raise InputError(f"{flag}: that directory is already the output of {owner[test.output_dir.resolve()]}; "
                             "give each test its own directory")
        owner[test.output_dir.resolve()] = flag
    overrides = [Override.parse(text) for text in args.override]
    user_conf = args.user_conf or default_user_conf()
    check_user_conf(user_conf)
    shard = _shard(args)
    qsl = QuerySampleLibrary.load(args.dataset, args.total_sample_count, shard)
    endpoints = [Endpoint.parse(text, args.node) for text in args.endpoint]
    # LoadGen's settings (and the schedule they make) are checked before vLLM is imported: bad input stays one line.
    with tempfile.TemporaryDirectory() as scratch:
        for test_mode in dict.fromkeys(t.mode for t in tests):
            build_settings(scenario, test_mode, user_conf, overrides, len(qsl), Path(scratch, EFFECTIVE_USER_CONF))
    backend, options = _backend(args, scenario, endpoints)
    job = Job(args, scenario, tests, qsl, backend, options, user_conf, overrides, endpoints, shard)
    for test in tests:       # every input is good: nothing of an earlier run stays where this one writes
        set_aside_earlier(test.output_dir)
    process_guard.on_stop(functools.partial(stop, job))
    return job


def run(args: argparse.Namespace) -> int:
    """Every test of the job in order on one started backend; the first failure ends it (the engine may be gone)."""
    job = prepare(args)
    try:
        for index, test in enumerate(job.tests):
            code = measure(job, test.output_dir, mode=test.mode, compliance_test=test.compliance_test)
            if code != EXIT_OK:
                if rest := job.tests[index + 1:]:
                    print(f"note: not run after {test.name} failed: "
                          f"{', '.join(f'{t.name} ({t.output_dir})' for t in rest)}", flush=True)
                return code
        return EXIT_OK
    finally:
        finish(job)


def finish(job: Job) -> None:
    """Stop the backend, then stamp the process's stop into every result.json it wrote (the GPU time budget's
    teardown); a process killed before this leaves stopped_utc null: its teardown is unknown, not zero."""
    process_guard.park_if_stopping()
    try:
        job.backend.stop()
    finally:
        _stamp_stop(job)


def _stamp_stop(job: Job) -> None:
    job.clock.stopped()
    for result, output_dir in job.written:
        result.process = job.clock.to_dict()
        result.write(output_dir)


def stop(job: Job, signal_name: str) -> None:
    """SIGTERM or SIGINT, on the signal's own thread (the process exits 128 + its number after this): the running
    test's result.json says it failed, stopped by the signal; then the engine stops, within STOP_GRACE_S (whatever
    it leaves running, process_guard's watchdog ends once this process has), and every result.json gets the stop."""
    job.end_test("failed", f"stopped by {signal_name}")
    engine = threading.Thread(target=job.backend.stop, name="stop-engine", daemon=True)
    engine.start()
    engine.join(process_guard.STOP_GRACE_S)
    if engine.is_alive():   # its stop stays unknown (stopped_utc null); its processes go with this one
        print(f"note: the engine did not stop within {process_guard.STOP_GRACE_S:g} s; its processes are ended "
              "after this one", file=sys.stderr, flush=True)
        return
    _stamp_stop(job)


def set_aside_earlier(output_dir: Path) -> Path | None:
    """Move an earlier run's files out of `output_dir` (into <output_dir>/../.earlier/<name>-<UTC time>/), saying
    where; None when there were none. A retried pod or a rerun into the same folder keeps what the earlier attempt
    wrote, and no result of it can pass for this run's."""
    earlier = sorted(p for p in output_dir.iterdir() if p.is_file()
                     and (p.name in EARLIER_FILES or p.name.startswith(EARLIER_PREFIX)))
    if not earlier:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = output_dir.parent / EARLIER_DIR / f"{output_dir.name}-{stamp}"
    aside.mkdir(parents=True)
    for path in earlier:
        path.rename(aside / path.name)
    print(f"note: {output_dir} held an earlier run's files ({', '.join(p.name for p in earlier)}): moved to "
          f"{aside}", flush=True)
    return aside


def measure(job: Job, output_dir: Path, scenario: Scenario | None = None, extra_overrides: Sequence[str] = (), *,
            mode: Mode | None = None, compliance_test: str | None = None) -> int:
    """One LoadGen test into `output_dir` with the job's backend (started here, or reused if already started);
    writes result.json whatever happens. 0 completed, 1 runtime failure. `mode`: the job's main mode unless given;
    `compliance_test`: LoadGen's audit.config of that test over the settings (none unless given)."""
    from mlperf_sut.accelerator import detect, host
    from mlperf_sut.harness import Harness
    from mlperf_sut.progress import Progress
    from mlperf_sut.result import RunResult

    args, scenario, mode = job.args, scenario or job.scenario, mode or job.mode
    writable_dir(output_dir, "--output-dir")
    set_aside_earlier(output_dir)      # the QPS search's tests (run's were set aside before its engine started)
    overrides = [*job.overrides, *(Override.parse(text) for text in extra_overrides)]
    settings = build_settings(scenario, mode, job.user_conf, overrides, len(job.qsl),
                              output_dir / EFFECTIVE_USER_CONF)
    for note in settings.notes:
        print(f"note: {note}", flush=True)
    (output_dir / MLPERF_CONF).write_text(embedded_mlperf_conf())     # kept with user.conf, as a submission needs
    audit = output_dir / AUDIT_CONFIG
    if compliance_test:
        audit.write_text(TEST06_AUDIT_CONFIG)
        print(f"note: compliance test {compliance_test}: LoadGen applies {audit} over these settings", flush=True)
    dummy = job.options is not None and job.options.dummy_weights
    if dummy and mode is Mode.ACCURACY:
        print("note: load_format=dummy (random weights): this accuracy run's outputs are not meaningful", flush=True)

    result = RunResult(
        scenario=scenario.label, mode=mode.label, node=args.node, backend=args.backend,
        model={"path": str(args.model), "name": args.model.name,
               "load_format": job.options.load_format if job.options else "remote"},
        dataset={"path": str(args.dataset), "total_sample_count": len(job.qsl),
                 "dataset_size": job.qsl.info.dataset_size, "sha256": job.qsl.info.sha256},
        accelerator=detect().to_dict(), engine=requested_engine(args), generation=BENCHMARK_GENERATION.to_dict(),
        loadgen_settings=settings.effective(),
        shard={"index": job.shard.index, "count": job.shard.count} if job.shard else None,
        accuracy_meaningful=not dummy, host=host(), engine_preset=requested_preset(args),
        run_id=getattr(args, "run_id", None))
    job.written.append((result, output_dir))
    job.running = (result, output_dir, Test(mode, compliance_test, output_dir).name, scenario.label)

    def abort(error: BaseException) -> None:
        """LoadGen would run out its min_duration after the failure: record it and leave now (LoadGen's logs of
        this run stay partial)."""
        process_guard.park_if_stopping()
        print_failure(error, args.debug, where_to_look(job, output_dir, error),
                      note="LoadGen was still running after it; the run was stopped")
        job.end_test("failed", f"{type(error).__name__}: {error}")
        os._exit(EXIT_RUNTIME)

    harness = Harness(job.qsl, job.backend, Progress(args.progress_interval), on_abort=abort)
    try:
        job.clock.engine_starting()
        job.backend.start(harness)
        job.clock.engine_ready()
        result.engine = job.backend.engine_info() or result.engine
        result.accelerator = job.backend.accelerator_info() or result.accelerator
        if job.options is None:        # http: the weights and the preset are the servers'
            result.engine_preset = next(iter(job.backend.server_cards().values()), {}).get("engine_preset")
            if result.engine.get("load_format"):
                result.model["load_format"] = result.engine["load_format"]
                result.accuracy_meaningful = result.engine["load_format"] != "dummy"
        outcome = harness.run(settings.test_settings, output_dir, audit)
    except Exception as error:  # noqa: BLE001 - every runtime failure is recorded in result.json, then exit 1
        process_guard.park_if_stopping()     # a signal's stop: the engine failed because it was stopped
        print_failure(error, args.debug, where_to_look(job, output_dir, error))
        job.end_test("failed", f"{type(error).__name__}: {error}")
        return EXIT_RUNTIME
    result.timing = {"start_utc": outcome.start_utc.isoformat(), "end_utc": outcome.end_utc.isoformat(),
                     "duration_s": round(outcome.duration_s, 3)}
    result.counts = {"queries_issued": outcome.queries_issued, "samples_completed": outcome.samples_completed,
                     "output_tokens": outcome.output_tokens}
    node_of = {e.url: e.node for e in job.endpoints}
    cards = job.backend.server_cards()
    result.endpoints = [{"url": url, "node": node_of.get(url, args.node), "samples_completed": samples,
                         "output_tokens": tokens, "accelerator": cards[url]["accelerator"] if url in cards else None}
                        for url, (samples, tokens) in sorted(outcome.per_endpoint.items())]
    path = job.end_test()
    print(f"result: {path} ({outcome.samples_completed} samples, {outcome.output_tokens} output tokens, "
          f"{outcome.duration_s:.1f} s)", flush=True)
    return EXIT_OK


def writable_dir(path: Path, flag: str) -> None:
    """Create `path` and prove it writable before any engine starts: a bad output path is bad input (exit 2), not a
    runtime failure to retry."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".mlperf_sut-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(f"{flag} {path}: cannot write there ({error.strerror or error}"
                         f"{'' if error.filename in (None, str(path)) else ': ' + str(error.filename)}); "
                         "give a writable directory") from None


def where_to_look(job: Job, output_dir: Path, error: BaseException) -> str:
    """Where a runtime failure's details are: the server logs of the endpoints the error names (else of all, for
    the http backend) and the run's result.json."""
    result = output_dir / "result.json"
    if job.endpoints:
        named = [e for e in job.endpoints if e.url in str(error)] or job.endpoints
        servers = ", ".join(f"{e.node} ({e.url})" for e in named)
        return f"the vLLM server log of {servers} (`python -m mlperf_sut serve` output on that node) and {result}"
    return str(result)


def _shard(args: argparse.Namespace) -> Shard | None:
    if (args.shard_index is None) != (args.shard_count is None):
        raise InputError("--shard-index and --shard-count go together (e.g. --shard-index 0 --shard-count 2)")
    return None if args.shard_index is None else Shard(args.shard_index, args.shard_count)


def _backend(args: argparse.Namespace, scenario: Scenario, endpoints: list[Endpoint]):
    """The backend and, for in-process vLLM, its engine options (None for http)."""
    if args.backend == "http":
        if not endpoints:
            raise InputError("--backend http needs at least one --endpoint [NODE=]URL")
        requested_options(args)    # checked like the vllm backend's: recorded until the servers' cards replace them
        # Written by the HTTP backend's owner: create_backend(urls, scenario, generation, model) -> Backend.
        from mlperf_sut.backends.http import create_backend

        return create_backend([e.url for e in endpoints], scenario, BENCHMARK_GENERATION, args.model), None
    if endpoints:
        raise InputError("--endpoint is only for --backend http")
    from mlperf_sut.backends import create_vllm_backend

    from mlperf_sut.accelerator import check_devices

    options = EngineOptions.from_args(args)
    check_devices(options.tensor_parallel_size, options.gpu_memory_utilization)
    return create_vllm_backend(scenario, options, BENCHMARK_GENERATION), options


