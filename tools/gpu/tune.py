"""Engine-settings sweep on one GPU, Offline or Server: each attempt is the SUT's own `run` with its engine flags.

Issue 17 part 5 asks more Offline tokens/s of one H200 than its headline (FP8 + FP8 KV, async scheduling, CUDA graphs
to 1,024, 1,024 sequences: 7,940 tokens/s over 600 s with 32,768 batched tokens, 8,094.9 with 49,152 after this sweep:
reference/h200/tune-offline-session-7). Every attempt starts its own engine (about 111 s on the H200) and runs
`python -m mlperf_sut run --scenario Offline --mode performance` cut to --samples samples (min_duration=0,
min_query_count=N, sample_concatenate_permutation=0) into OUT/<name>/, its output in OUT/<name>.log. A short test
drains its last batch at low concurrency, which weighs more the larger max_num_seqs is: --confirm-600s then runs the
best attempt over MLPerf's full Offline duration (target_qps 57.5: LoadGen issues 1.1 x 600 s x 57.5 samples, padded
to 40,104, three passes over the data set; ~650 s on an H200) into OUT/<name>-600s/.

The attempts file (JSON; tools/gpu/tune_offline.json is the H200's):
    {"base": {"model": DIR, "dataset": FILE, "flags": {...}, "engine_args": {...}},
     "attempts": [{"name": "baseline", "why": "...", "flags": {...}, "engine_args": {...}}, ...]}
- "flags": `mlperf_sut run`'s engine flags by their names with underscores (max_num_seqs: 1536, enforce_eager: true);
  "engine_args": other vLLM engine arguments, each passed as --engine-arg KEY=JSON (async_scheduling, compilation_config).
- An attempt's keys replace the base's; null drops the base's (vLLM's default then). Relative paths are taken from the
  attempts file's folder; --model/--dataset replace the base's. One attempt must be named "baseline".
- Prompt prefix caching is refused (LoadGen repeats samples: a cached prompt skips its prefill, so tokens/s is overstated).
Bad input (file, key, value, duplicate name, prefix caching) exits 2 with one line naming it, before any engine starts.

--gpus 0,1 runs as many attempts at once as it names GPUs, each engine on one GPU of its own (CUDA_VISIBLE_DEVICES;
an attempt's `gpu` says which), and the confirmation on the first: on two H200 of one host the seven attempts take four
rounds instead of seven. Attempts on different GPUs compare with the GPUs' own difference in them (~1% between the two
H200 of reference/h200x2); the 600 s confirmation is the figure that counts.

--server-qps X sweeps the Server scenario instead (issue 17 part 5 also asks Server >= 60 QPS VALID over all 13,368
queries): each attempt is `run --scenario Server` at target QPS X for --samples queries (min_duration=0,
min_query_count=N; equal issue stays on, so with N = 13,368 every sample is issued once), read back with the SUT's
search-qps reader (VALID, the constraints not met, completed tokens/s, TTFT and TPOT p99). "best" is then the VALID
attempt of most completed tokens/s at that rate (one that keeps up completes the most), and --confirm-600s reruns it
at X over MLPerf's 600 s with mlperf.conf's query count into OUT/<name>-600s/. tools/gpu/tune_server.json is
the H200's attempts file.

`python -m include report OUT --out DIR` renders the attempts (one row each in the report's infrastructure and
results tables: engine settings beside tokens/s). Writes OUT/tune.json after every attempt (a cut-short session keeps
what finished):
    {"scenario": "Offline"|"Server", "target_qps": X|null, "samples": N, "attempts": [{name, flags, engine_args,
     engine, tokens_per_second, valid, duration_s, samples, engine_startup_s, exit_code, error, output_dir, gpu,
     (Server:) invalid_reasons, ttft_p99_ms, tpot_p99_ms}, ...] (in the file's order),
     "best": <the VALID completed attempt of most tokens/s>, "confirmation": <the 600 s run, or null>}
(a Server attempt's tokens_per_second is LoadGen's completed tokens/s).
Prints one line per attempt; the last line: `tune_best=<name> tune_best_tok_s=<x> tune_baseline_tok_s=<y>`.
Exit 0 when every SUT run exited 0, 1 when one failed (recorded; the others still ran), 2 for bad input.

    PYTHONPATH=<vllm bundle>:sut_image python3 tools/gpu/tune.py tools/gpu/tune_offline.json \
        --dataset WORK/cnn_synthetic.json --output-dir OUT [--samples 4000] [--only NAME ...] [--gpus 0,1]
        [--confirm-600s] [--server-qps X]
(tools/gpu/device_session.sh tune runs that on a lent H200, with --confirm-600s; TUNE_ARGS adds --gpus 0,1;
tune-server<X> runs tune_server.json at X QPS over 13,368 queries.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path

from mlperf_sut.engine import add_engine_arguments
from mlperf_sut.errors import InputError
from mlperf_sut.qps_search import confirm_overrides, read_probe
from mlperf_sut.settings import Scenario

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
BASELINE = "baseline"
# LoadGen sizes a full Offline test as 1.1 x min_duration x target_qps samples; equal issue pads 37,950 to 40,104
CONFIRM_TARGET_QPS = 57.5
SHORT_TEST = ("min_duration=0", "min_query_count={samples}", "sample_concatenate_permutation=0")
CONFIRM_S = 600   # MLPerf's min_duration
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
TOP_KEYS, BASE_KEYS, ATTEMPT_KEYS = {"about", "base", "attempts"}, {"model", "dataset", "flags", "engine_args"}, \
    {"name", "why", "flags", "engine_args"}
PREFIX_CACHING = "enable_prefix_caching"


@dataclasses.dataclass(frozen=True)
class Attempt:
    name: str
    why: str
    flags: dict            # `run`'s engine flags, base and attempt merged
    engine_args: dict      # --engine-arg KEY=JSON, base and attempt merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attempts_file", type=Path, help="JSON of a base and named attempts (see the docstring)")
    parser.add_argument("--output-dir", type=Path, required=True, help="OUT: each attempt's run and tune.json")
    parser.add_argument("--samples", type=int, default=4000, help="samples of each shortened test (default 4000)")
    parser.add_argument("--model", type=Path, help="model directory, instead of the attempts file's")
    parser.add_argument("--dataset", type=Path, help="data set, instead of the attempts file's")
    parser.add_argument("--node", default="local", help="node name the runs' result.json record (default local)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this attempt (repeatable; default all, in the file's order)")
    parser.add_argument("--gpus", help="GPU ids, e.g. 0,1: that many attempts at once, one engine per GPU "
                                       "(default: one at a time, on the GPUs CUDA_VISIBLE_DEVICES gives)")
    parser.add_argument("--confirm-600s", action="store_true",
                        help="then run the best attempt over MLPerf's full duration into OUT/<name>-600s")
    parser.add_argument("--server-qps", type=float, metavar="X",
                        help="sweep the Server scenario at this target QPS instead of Offline (--samples queries)")
    args = parser.parse_args(argv)
    try:
        if args.samples < 1:
            raise InputError(f"--samples {args.samples}: give 1 or more samples per attempt (default 4000)")
        if args.server_qps is not None and not args.server_qps > 0:
            raise InputError(f"--server-qps {args.server_qps:g}: give a target QPS above 0, e.g. 60")
        gpus = _gpus(args.gpus)
        model, dataset, attempts = load(args.attempts_file, args.model, args.dataset)
        unknown = [name for name in args.only if name not in {a.name for a in attempts}]
        if unknown:
            raise InputError(f"--only {unknown[0]}: no attempt of that name in {args.attempts_file} "
                             f"(it has {', '.join(a.name for a in attempts)})")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    chosen = [a for a in attempts if not args.only or a.name in args.only]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    server = args.server_qps is not None
    scenario = Scenario.SERVER if server else Scenario.OFFLINE
    record = {"attempts_file": str(args.attempts_file), "scenario": scenario.label, "target_qps": args.server_qps,
              "samples": args.samples, "attempts": [], "best": None, "confirmation": None}
    # a Server attempt: search-qps's confirming test at that rate cut to --samples queries, equal issue on
    overrides = ([*confirm_overrides(args.server_qps, 0), f"min_query_count={args.samples}"] if server
                 else [o.format(samples=args.samples) for o in SHORT_TEST])
    confirm = confirm_overrides(args.server_qps, CONFIRM_S) if server else [f"target_qps={CONFIRM_TARGET_QPS}"]
    free: queue.Queue[str | None] = queue.Queue()
    for gpu in gpus:
        free.put(gpu)

    def on_a_free_gpu(attempt: Attempt) -> dict:
        gpu = free.get()
        try:
            return measure(attempt, scenario, model, dataset, args.node, args.output_dir / attempt.name, overrides,
                           gpu, args.server_qps)
        finally:
            free.put(gpu)

    finished: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=len(gpus)) as pool:
        for future in as_completed([pool.submit(on_a_free_gpu, attempt) for attempt in chosen]):
            entry = future.result()
            finished[entry["name"]] = entry
            record["attempts"] = [finished[a.name] for a in chosen if a.name in finished]
            record["best"] = best(record["attempts"])
            write(args.output_dir, record)
    if args.confirm_600s and record["best"]:
        winner = next(a for a in chosen if a.name == record["best"]["name"])
        record["confirmation"] = measure(winner, scenario, model, dataset, args.node,
                                         args.output_dir / f"{winner.name}-600s", confirm, gpus[0], args.server_qps)
        write(args.output_dir, record)
    elif args.confirm_600s:
        print("tune: no VALID completed attempt to confirm over 600 s", flush=True)
    baseline = next((a for a in record["attempts"] if a["name"] == BASELINE), None)
    top = record["best"]
    print(f"tune_best={top['name'] if top else 'none'} "
          f"tune_best_tok_s={figure(top and top['tokens_per_second'])} "
          f"tune_baseline_tok_s={figure(baseline and baseline['tokens_per_second'])}", flush=True)
    runs = record["attempts"] + ([record["confirmation"]] if record["confirmation"] else [])
    return EXIT_OK if all(r["exit_code"] == 0 for r in runs) else EXIT_FAILED


def _gpus(value: str | None) -> list[str | None]:
    """--gpus as CUDA_VISIBLE_DEVICES values, one per concurrent attempt; [None]: one at a time, the environment's."""
    if value is None:
        return [None]
    gpus = [gpu.strip() for gpu in value.split(",")]
    if not all(gpu.isdigit() for gpu in gpus) or len(set(gpus)) != len(gpus):
        raise InputError(f"--gpus {value}: give distinct GPU ids separated by commas, e.g. 0,1")
    return gpus


def load(path: Path, model: Path | None, dataset: Path | None) -> tuple[Path, Path, list[Attempt]]:
    """The attempts file, checked whole: every key, flag value and name, before any engine starts."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error} (give the path of an attempts file, e.g. "
                         "tools/gpu/tune_offline.json)") from None
    except ValueError as error:
        raise InputError(f"{path}: not JSON ({error}); fix the file") from None
    if not isinstance(document, dict) or not isinstance(document.get("base"), dict) \
            or not isinstance(document.get("attempts"), list) or not document["attempts"]:
        raise InputError(f"{path}: expected an object with \"base\" (an object) and \"attempts\" (a non-empty list)")
    _known_keys(document, TOP_KEYS, "the top level")
    base = document["base"]
    _known_keys(base, BASE_KEYS, "base")
    folder = path.parent
    model = model or _path(base, "model", folder)
    dataset = dataset or _path(base, "dataset", folder)
    if not (model / "config.json").is_file():
        raise InputError(f"base.model {model}: no config.json there (give a model directory, or --model DIR)")
    if not dataset.is_file():
        raise InputError(f"base.dataset {dataset}: no such file (give a cnn_eval.json-format file, or --dataset FILE; "
                         "python -m mlperf_sut build-dataset writes one)")
    flag_actions = _flag_actions()
    attempts, names = [], set()
    for index, entry in enumerate(document["attempts"]):
        where = f"attempts[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not NAME.fullmatch(entry["name"]):
            raise InputError(f"{where}.name: each attempt needs a name of letters, digits, '.', '_' or '-' "
                             "(it names the attempt's output folder)")
        name = entry["name"]
        where = f"attempt {name!r}"
        _known_keys(entry, ATTEMPT_KEYS, where)
        if name in names:
            raise InputError(f"{where}: the name is used twice; give each attempt its own name")
        names.add(name)
        attempt = Attempt(name, str(entry.get("why", "")), _merge(base, entry, "flags", where),
                          _merge(base, entry, "engine_args", where))
        for key, value in attempt.flags.items():
            _check_flag(key, value, flag_actions, where)
        if attempt.flags.get(PREFIX_CACHING) or attempt.engine_args.get(PREFIX_CACHING):
            inherited = (base.get("flags") or {}).get(PREFIX_CACHING) or (base.get("engine_args") or {}).get(
                PREFIX_CACHING)
            raise InputError(f"{'base (so every attempt, first ' + repr(name) + ')' if inherited else where}: "
                             f"{PREFIX_CACHING} is on; remove it (LoadGen repeats samples: a cached prompt skips its "
                             "prefill, so tokens/s would be overstated)")
        attempts.append(attempt)
    if BASELINE not in names:
        raise InputError(f"{path}: no attempt is named {BASELINE!r}; add one with the current best settings (the "
                         "last line compares the best attempt with it)")
    _check_engine_args(attempts)
    return model, dataset, attempts


def _known_keys(entry: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(known))}")


def _path(base: dict, key: str, folder: Path) -> Path:
    if not isinstance(base.get(key), str):
        raise InputError(f"base.{key}: missing; give a path in the attempts file or --{key}")
    return folder / base[key]


def _merge(base: dict, entry: dict, key: str, where: str) -> dict:
    for part, name in ((base, "base"), (entry, where)):
        if not isinstance(part.get(key, {}), dict):
            raise InputError(f"{name}.{key}: expected an object of name: value")
    merged = {**base.get(key, {}), **entry.get(key, {})}
    return {k: v for k, v in merged.items() if v is not None}


def _flag_actions() -> dict[str, argparse.Action]:
    """`run`'s engine flags, from the SUT's own definition; --engine-arg is the "engine_args" object."""
    parser = argparse.ArgumentParser(add_help=False)
    add_engine_arguments(parser)
    return {action.dest: action for action in parser._actions if action.dest != "engine_arg"}


def _check_flag(key: str, value, actions: dict[str, argparse.Action], where: str) -> None:
    action = actions.get(key)
    if action is None:
        raise InputError(f"{where}: flags.{key} is not an engine flag of `mlperf_sut run` (those are "
                         f"{', '.join(sorted(actions))}); put other vLLM engine arguments under engine_args")
    if action.nargs == 0:     # an on/off flag
        if not isinstance(value, bool):
            raise InputError(f"{where}: flags.{key} is on or off: give true or false, not {value!r}")
        return
    try:
        if isinstance(value, (bool, dict, list)):
            raise ValueError
        (action.type or str)(str(value))
    except ValueError:
        raise InputError(f"{where}: flags.{key} {value!r} is not a valid value of {action.option_strings[-1]} "
                         f"({action.help})") from None


def _check_engine_args(attempts: list[Attempt]) -> None:
    """engine_args names against vLLM's EngineArgs where vLLM is importable: a typo fails here, not after a start."""
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:
        return
    known = {f.name for f in dataclasses.fields(EngineArgs)}
    for attempt in attempts:
        for key in attempt.engine_args:
            if key not in known:
                raise InputError(f"attempt {attempt.name!r}: engine_args.{key} is not a vLLM engine argument "
                                 "(see vLLM's EngineArgs); fix the name")


def command(attempt: Attempt, scenario: Scenario, model: Path, dataset: Path, node: str, out: Path,
            overrides: list[str]) -> list[str]:
    """The SUT's `run` for one attempt; its result.json names the node NODE:<attempt> (NODE:<attempt>-600s for the
    confirmation), so the pipeline's report of OUT (`python -m include report OUT`) has a row per attempt, its engine
    settings beside its tokens/s."""
    flags = []
    for key, value in attempt.flags.items():
        option = "--" + key.replace("_", "-")
        if value is True:
            flags.append(option)
        elif value is not False:
            flags += [option, str(value)]
    for key, value in attempt.engine_args.items():
        flags += ["--engine-arg", f"{key}={json.dumps(value)}"]
    return [sys.executable, "-m", "mlperf_sut", "run", "--scenario", scenario.label, "--mode", "performance",
            "--model", str(model), "--dataset", str(dataset), "--output-dir", str(out), "--node", f"{node}:{out.name}",
            "--progress-interval", "30", *(arg for o in overrides for arg in ("--override", o)), *flags]


def measure(attempt: Attempt, scenario: Scenario, model: Path, dataset: Path, node: str, out: Path,
            overrides: list[str], gpu: str | None = None, target_qps: float | None = None) -> dict:
    """Run one attempt (its output in OUT/<name>.log; on GPU `gpu` alone when given) and read back LoadGen's summary
    (a Server test's with search-qps's reader) and the SUT's result.json."""
    argv = command(attempt, scenario, model, dataset, node, out, overrides)
    log = out.with_name(out.name + ".log")
    env = None if gpu is None else {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
    with log.open("w") as sink:
        code = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, env=env).returncode
    result = _json(out / "result.json")
    summary = (out / "mlperf_log_summary.txt").read_text() if (out / "mlperf_log_summary.txt").is_file() else ""
    tokens = re.search(r"Tokens per second\s*:\s*([0-9.]+)", summary)
    probe = read_probe(scenario, target_qps, out) if scenario is Scenario.SERVER and summary else None
    process = result.get("process") or {}
    error = result.get("error")
    if code != 0 and not error:   # no result.json (bad input, or killed): the SUT's own error line, else the code
        error = next((line for line in reversed(log.read_text(errors="replace").splitlines())
                      if line.startswith("error:")), f"exit code {code}, no result.json (see {log})")
    entry = {
        "name": attempt.name, "why": attempt.why, "flags": attempt.flags, "engine_args": attempt.engine_args,
        "engine": result.get("engine"),  # as vLLM resolved them (defaults filled in)
        "overrides": overrides, "command": argv,
        "tokens_per_second": probe.completed_tokens_per_second if probe else float(tokens.group(1)) if tokens else None,
        "valid": re.search(r"Result is\s*:\s*VALID", summary) is not None,
        "status": result.get("status"), "exit_code": code, "error": error,
        "duration_s": (result.get("timing") or {}).get("duration_s"),
        "samples": (result.get("counts") or {}).get("samples_completed"),
        "engine_startup_s": _seconds(process.get("start_utc"), process.get("engine_ready_utc")),
        "output_dir": str(out), "log": str(log), "gpu": gpu,
    }
    if scenario is Scenario.SERVER:
        entry.update(invalid_reasons=probe.invalid_reasons if probe else None,
                     ttft_p99_ms=probe.ttft_p99_ms if probe else None, tpot_p99_ms=probe.tpot_p99_ms if probe else None)
    where = "" if gpu is None else f" (GPU {gpu})"
    latency = (f", TTFT p99 {figure(entry['ttft_p99_ms'])} ms, TPOT p99 {figure(entry['tpot_p99_ms'])} ms"
               + (f" (unmet: {unmet(entry['invalid_reasons'])})" if entry["invalid_reasons"] else "")
               if scenario is Scenario.SERVER else "")
    print(f"tune: {attempt.name}{where}: {figure(entry['tokens_per_second'])} tokens/s, "
          f"{'VALID' if entry['valid'] else 'not VALID'}{latency}, {figure(entry['samples'])} samples in "
          f"{figure(entry['duration_s'])} s, engine start-up {figure(entry['engine_startup_s'])} s, exit {code}"
          + (f" ({error})" if error else ""), flush=True)
    return entry


def best(entries: list[dict]) -> dict | None:
    """The VALID completed attempt of most tokens/s."""
    done = [e for e in entries if e["valid"] and e["status"] == "completed" and e["tokens_per_second"] is not None]
    return max(done, key=lambda e: e["tokens_per_second"]) if done else None


def unmet(reasons: list[str]) -> str:
    """LoadGen names an unmet constraint by its summary line ("Early stopping satisfied: NO"): the constraint alone."""
    return ", ".join(re.sub(r"\s*satisfied$", "", reason, flags=re.IGNORECASE) for reason in reasons)


def figure(value) -> str:
    return "unknown" if value is None else f"{value:g}"


def write(out: Path, record: dict) -> None:
    path = out / "tune.json"
    path.with_suffix(".tmp").write_text(json.dumps(record, indent=2) + "\n")
    path.with_suffix(".tmp").replace(path)    # whole or not at all, if the session is cut short meanwhile


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


if __name__ == "__main__":
    sys.exit(main())
