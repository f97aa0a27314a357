"""Command line: `run` (LoadGen tests on one engine), `search-qps`, `engine-args-schema`, `build-*`, `serve`'s hook.

Exit codes (also in --help): 0 the run completed (VALID or INVALID alike: judging validity is the pipeline's job);
1 runtime failure, worth retrying (the engine or an endpoint failed or died; result.json says "failed" and why);
2 bad input, not worth retrying until it is fixed (a flag, file, path, permission or device problem; one line
naming it and the fix); 143 (SIGTERM) or 130 (SIGINT): stopped, the engine with it, and the running test's result.json
says "failed", stopped by the signal. Failures print one line on stderr; --debug adds the traceback.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from mlperf_sut.engine import add_engine_arguments
from mlperf_sut.errors import EXIT_CODES, EXIT_INPUT, EXIT_OK, InputError
from mlperf_sut.settings import COMPLIANCE_TESTS, Mode, Scenario, also_tests

# The commands that start an engine: run as `python -m mlperf_sut`, they guard their child processes (process_guard).
ENGINE_COMMANDS = ("run", "search-qps", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlperf_sut", description=__doc__.splitlines()[0],
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)

    tiny = commands.add_parser("build-tiny-model", help="write the embedded tiny random-weight Llama (no download)")
    tiny.add_argument("--output", type=Path, required=True, help="model directory to create")

    data = commands.add_parser("build-dataset", help="write a data set in the exact cnn_eval.json format")
    data.add_argument("--output", type=Path, required=True, help="JSON file to write")
    data.add_argument("--samples", type=int, required=True, help="number of samples")
    data.add_argument("--seed", type=int, default=0, help="generator seed (default 0); same seed, same bytes")
    kind = data.add_mutually_exclusive_group(required=True)
    kind.add_argument("--tokenizer", type=Path, help="model directory whose tokenizer.json makes tok_input")
    kind.add_argument("--synthetic-token-ids", action="store_true",
                      help="random token-id prompts with CNN/DailyMail lengths (dummy weights, no tokenizer)")
    data.add_argument("--vocab-size", type=int, help="model vocabulary size (with --synthetic-token-ids)")

    schema = commands.add_parser("engine-args-schema",
                                 help="vLLM's engine arguments as JSON Schema, from the installed vLLM (the committed "
                                      "mlperf_sut/engine_args.schema.json is this output)")
    schema.add_argument("--output", type=Path, help="file to write (default: standard output)")

    search = commands.add_parser("search-qps", help="highest VALID Server/Interactive target QPS, on one engine",
                                 epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_arguments(search, with_scenario=False)
    from mlperf_sut.qps_search import add_arguments as add_search_arguments

    add_search_arguments(search)

    # `serve` belongs to mlperf_sut.serve, which parses its own arguments: imported only when used.
    commands.add_parser("serve", help="serve the model over HTTP for distributed runs (see serve --help)",
                        add_help=False)
    return parser


def _add_run(commands) -> None:
    run = commands.add_parser("run", help="run a LoadGen test (and --also more on the same engine), writing each "
                                          "one's logs and result.json", description=RUN_DESCRIPTION,
                              epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_arguments(run, with_scenario=True)
    run.add_argument("--also", action="append", default=[], metavar="TEST=OUTPUT_DIR",
                     help=f"after the main test, run TEST ({', '.join(also_tests())}) of the same scenario on the same "
                          "started engine into OUTPUT_DIR (its own LoadGen logs and result.json); repeatable, in order")


RUN_DESCRIPTION = """Run one LoadGen test (--scenario, --mode, --compliance-test) into --output-dir; each --also runs
one more test of the same scenario, in order, on the engine already started (start-up is paid once: weights, CUDA
graphs, warm-up take minutes on a GPU). Every input, --also included, is checked before the engine starts. A test
that fails ends the process: the engine's state is unknown, so the later tests are not run."""


def _add_run_arguments(run: argparse.ArgumentParser, with_scenario: bool) -> None:
    """`run`'s flags; `search-qps` takes the same ones but chooses its scenarios with --range."""
    if with_scenario:
        run.add_argument("--scenario", required=True, choices=[s.label for s in Scenario],
                         help="Interactive is Server with the interactive latency limits")
        run.add_argument("--mode", required=True, choices=[m.label for m in Mode])
    else:
        run.set_defaults(mode=Mode.PERFORMANCE.label)
    run.add_argument("--model", type=Path, required=True,
                     help="model directory (config.json; without tokenizer files prompts run as token ids)")
    run.add_argument("--dataset", type=Path, required=True, help="cnn_eval.json-format file (tok_input is used)")
    run.add_argument("--output-dir", type=Path, required=True, help="where LoadGen's logs and result.json go")
    run.add_argument("--total-sample-count", type=int, help="use only the first N samples (default: all)")
    run.add_argument("--node", default="local", help="node name recorded in result.json (default: local)")
    run.add_argument("--run-id", help="the pipeline run this process runs for (the DAG run id), recorded in "
                                      "result.json: the pipeline reads a result of another run as stale")
    run.add_argument("--backend", choices=["vllm", "http"], default="vllm",
                     help="vllm: engine in this process; http: remote servers given by --endpoint")
    run.add_argument("--endpoint", action="append", default=[], metavar="[NODE=]URL",
                     help="http backend: an OpenAI-compatible server; repeat for several nodes")
    run.add_argument("--user-conf", type=Path, help="LoadGen user.conf (default: the one shipped in the package)")
    run.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                     help="one LoadGen user.conf key for this run's scenario, e.g. min_duration=0; repeatable")
    if with_scenario:
        run.add_argument("--compliance-test", choices=COMPLIANCE_TESTS,
                         help="run MLPerf's compliance test (TEST06: LoadGen's audit.config of 100 logged queries, "
                              "for the pipeline's verification); with --mode performance")
    run.add_argument("--shard-index", type=int, help="this node's shard of the samples (with --shard-count)")
    run.add_argument("--shard-count", type=int, help="number of contiguous shards the samples are split into")
    run.add_argument("--progress-interval", type=float, default=10.0, metavar="SECONDS",
                     help="seconds between progress lines on stdout (0: none; default 10)")
    run.add_argument("--debug", action="store_true", help="print the traceback of a failure, not only its line")
    add_engine_arguments(run.add_argument_group("vLLM engine (vllm backend)"))


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] and sys.argv[1] in ENGINE_COMMANDS:   # this process is the SUT, not a caller's
        from mlperf_sut import process_guard

        process_guard.guard_children()
        if sys.argv[1] != "serve":       # serve becomes vLLM's server, which stops on SIGTERM itself
            process_guard.stop_on_signals()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from mlperf_sut.serve import main as serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build-tiny-model":
            from mlperf_sut.tiny_model import build_tiny_model

            print(f"tiny model written to {build_tiny_model(args.output)}")
            return EXIT_OK
        if args.command == "build-dataset":
            return _build_dataset(args)
        if args.command == "engine-args-schema":
            return _engine_args_schema(args)
        if args.command == "search-qps":
            from mlperf_sut.qps_search import search

            return search(args)
        from mlperf_sut.runner import run

        return run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as error:
        if error.filename is None:      # not a path (a socket, a pipe): a runtime failure, shown in full
            raise
        # A path that cannot be read, written or created, outside a measured run: the input is wrong.
        if getattr(args, "debug", False):
            traceback.print_exception(error, file=sys.stderr)
        print(f"error: {path_problem(error)}", file=sys.stderr)
        return EXIT_INPUT


def path_problem(error: OSError) -> str:
    """One line for a path that cannot be used: which path, why, what to do."""
    where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    return f"{where}: {error.strerror or error} (check the path exists, is a directory where one is needed, and " \
           "is writable by this user)"


def _build_dataset(args) -> int:
    from mlperf_sut import dataset

    if args.synthetic_token_ids:
        if args.vocab_size is None:
            raise InputError("--synthetic-token-ids needs --vocab-size V (the model config.json's vocab_size)")
        path = dataset.build_synthetic_token_dataset(args.vocab_size, args.samples, args.output, args.seed)
    else:
        path = dataset.build_text_dataset(args.tokenizer, args.samples, args.output, args.seed)
    print(f"data set written to {path} ({args.samples} samples)")
    return EXIT_OK


def _engine_args_schema(args) -> int:
    from mlperf_sut.engine import sut_flags
    from mlperf_sut.engine_args import build_schema, schema_text

    schema = build_schema(sut_flags())
    if args.output is None:
        sys.stdout.write(schema_text(schema))
    else:
        args.output.write_text(schema_text(schema))
        print(f"engine arguments of vLLM {schema['x-vllm-version']} written to {args.output}")
    return EXIT_OK
