"""`python -m include plan --commands`: the DAG's plan as a shell script for one host with several GPUs.

The script holds what the DAG's local runner would run for the same params and deployment (MLPERF_* variables),
built from the same code: `plan.make_plan` for the runs, their arguments and output directories, and
`runners.local` for the command lines and each node's CUDA_VISIBLE_DEVICES (`MLPERF_LOCAL_GPUS`, e.g.
`h200-0=0,h200-1=1`). It is for a user with one multi-GPU host and no cluster or Airflow, and for the reference runs
on lent GPU machines, where Airflow cannot run.

Order, as in the DAG: the single-GPU runs (one background job per node, each node's runs in turn), then the
coordinated branch (a `serve` per node on 127.0.0.1:BASE_PORT+i, --base-port; the LoadGen driver over HTTP once
every /health answers; the servers stopped whatever happened), then the sharded branch (one job per node at once). A
failed run does not stop the others (the DAG's sharded and teardown tasks run whatever happened); the script exits 1
if any failed. Several `distributed` values make one plan each with the same run id; their
runs are merged into one artefacts folder, the single-GPU runs once; `--mode-param` gives one mode's plan params
of its own (the single-GPU runs keep the common ones).

`--engine-flags` adds SUT engine flags the DAG's params do not have (FP8, vLLM engine arguments) to every run that
starts an engine (single, sharded, serve); the script's header names them.

`ONLY_RUNS=NAME[,NAME...]` in the script's environment runs only the runs so named (or so prefixed, e.g.
`single/h200-0/Offline`); plan.json stays whole, so the pipeline still expects every run. It splits one plan over
several sittings or GPUs, or runs a failed run again; a value that matches no run is refused (exit 2).
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.runners import local

if TYPE_CHECKING:      # include.plan imports Airflow: loaded only when a plan is made, not for `report`
    from include.deployment import Deployment
    from include.plan import BenchmarkPlan, RunSpec

BASE_PORT = 8100
HEALTH_POLL_S = 2


@dataclass(frozen=True)
class Commands:
    plans: list[BenchmarkPlan]
    runs: list[RunSpec]              # merged, in plan order, each name once
    gpus: dict[str, str]
    engine_flags: list[str]
    sut_python: str
    server_start_timeout_s: int
    base_port: int = BASE_PORT


def default_params(dep: Deployment) -> dict[str, Any]:
    """The trigger form's defaults for this deployment."""
    from include.plan import trigger_params

    return {name: param.value for name, param in trigger_params(dep).items()}


def build(dep: Deployment, params: dict[str, Any], run_id: str, *, distributed: list[str] | None = None,
          mode_params: dict[str, dict[str, Any]] | None = None, gpus: dict[str, str] | None = None,
          engine_flags: list[str] | None = None, sut_python: str | None = None,
          base_port: int = BASE_PORT, branch: str | None = None) -> Commands:
    """One plan per `distributed` value (default: the params' own), merged; checks every node has its GPUs.

    `mode_params[mode]` are params of that mode's plan alone (e.g. a coordinated run issuing twice the queries of
    a single-GPU run, so every GPU does the same work in a shortened test). The single-GPU runs come from the params
    without any mode's own; each plan adds its distributed runs."""
    from include.plan import PlanError, make_plan, trigger_params

    names = set(trigger_params(dep))
    for where, given in [("params", params), *((f"--mode-param {m}", p) for m, p in (mode_params or {}).items())]:
        unknown = sorted(set(given) - names)
        if unknown:
            raise PlanError(f"{unknown[0]}: not a param of the DAG ({where}; params: {', '.join(sorted(names))})")
    merged = {**default_params(dep), **params}
    modes = distributed or [merged["distributed"]]
    extra = set(mode_params or {}) - set(modes)
    if extra:
        raise PlanError(f"--mode-param: {', '.join(sorted(extra))} is not among the planned modes {modes}")
    plans = [make_plan({**merged, **(mode_params or {}).get(mode, {}), "distributed": mode}, dep, run_id)
             for mode in modes]
    # the single-GPU runs of the params themselves (a mode's own params change only that mode's runs)
    base = make_plan({**merged, "distributed": "off"}, dep, run_id) if mode_params else plans[0]
    runs: dict[str, RunSpec] = {r.name: r for r in base.runs if r.branch == "single"}
    for plan in plans:
        for run in plan.runs:
            if run.branch == "single":
                continue
            if run.name in runs:
                raise PlanError(f"distributed: two plans give {run.name}")
            runs[run.name] = run
    if branch is not None:        # one branch only: the other's runs are not in the script (nor its plan.json)
        runs = {name: run for name, run in runs.items() if run.branch == branch}
        if not runs:
            raise PlanError(f"--branch {branch}: the plan has no {branch} runs")
    gpus = local.gpu_map() if gpus is None else gpus
    if gpus:
        missing = [n for n in plans[0].nodes if n not in gpus]
        if missing:
            raise PlanError(f"nodes: {', '.join(missing)} have no GPU in {local.GPUS_ENV} "
                            f"({', '.join(f'{k}={v}' for k, v in gpus.items()) or 'empty'})")
    if not 1024 <= base_port <= 65535 - len(plans[0].nodes):
        raise PlanError(f"--base-port {base_port}: needs 1024..{65535 - len(plans[0].nodes)} (one port per node)")
    return Commands(plans, list(runs.values()), gpus, list(engine_flags or []), sut_python or dep.sut_python,
                    dep.server_start_timeout_s, base_port)


def _with_engine_flags(run: RunSpec, flags: list[str]) -> list[str]:
    """A run's arguments, plus the extra engine flags where the run starts an engine (the vllm backend)."""
    args = list(run.arguments)
    if flags and "--backend" in args and args[args.index("--backend") + 1] == "vllm":
        args += flags
    return args


def _env_prefix(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)} " for k, v in env.items())


def _run_line(cmds: Commands, run: RunSpec, extra_args: list[str] | None = None) -> str:
    spec = {**run.to_dict(), "arguments": _with_engine_flags(run, cmds.engine_flags) + (extra_args or [])}
    cmd = shlex.join(local.sut_command(spec, cmds.sut_python))
    log_path = local.sut_log_path(spec)
    env = _env_prefix(local.gpu_env(spec, cmds.gpus))
    outs = " ".join(shlex.quote(t.output_dir) for t in run.tests)
    return (f"sut_run {shlex.quote(run.name)} {shlex.quote(str(log_path))} {run.timeout_s} {len(run.tests)} {outs} "
            f"env {env}{cmd}")


def script(cmds: Commands) -> str:
    """The bash script: single-GPU runs, then coordinated, then sharded; see the module's docstring."""
    first = cmds.plans[0]
    merged_plan = {**first.to_dict(), "distributed": "+".join(p.distributed for p in cmds.plans),
                   "runs": [r.to_dict() for r in cmds.runs]}
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by `python -m include plan --commands` (include/plan_commands.py): the DAG's plan for run",
        f"# {first.run_id}, distributed={'+'.join(p.distributed for p in cmds.plans)}, nodes {', '.join(first.nodes)}.",
        "# GPUs: " + (", ".join(f"{n}=CUDA_VISIBLE_DEVICES {g}" for n, g in cmds.gpus.items()) or "not pinned"),
        "# Engine flags beyond the DAG's params: " + (shlex.join(cmds.engine_flags) or "none"),
        *[f"# note: {note}" for note in dict.fromkeys(n for p in cmds.plans for n in p.notes)],
        "# ONLY_RUNS=NAME[,NAME...] (names of `runs` below, or prefixes) runs only those; plan.json stays whole.",
        "set -uo pipefail",
        "failed=0",
        "wanted() {   # NAME: in ONLY_RUNS (comma-separated names or prefixes), or ONLY_RUNS unset",
        '  [ -z "${ONLY_RUNS:-}" ] && return 0',
        "  local item items; IFS=, read -ra items <<< \"$ONLY_RUNS\"",
        '  for item in "${items[@]}"; do [ -n "$item" ] && [[ $1 == "$item"* ]] && return 0; done',
        "  return 1",
        "}",
        f"runs=({' '.join(shlex.quote(r.name) for r in cmds.runs)})",
        'matched=0; for run in "${runs[@]}"; do wanted "$run" && matched=1; done',
        'if [ $matched = 0 ]; then echo "ONLY_RUNS=$ONLY_RUNS matches no run of this plan; runs: ${runs[*]}" >&2; exit 2; fi',
        "sut_run() {   # NAME LOG TIMEOUT_S N OUTPUT_DIR...(N, one per test) COMMAND...: the local runner's run_spec",
        '  wanted "$1" || { echo "=== skip $1 (not in ONLY_RUNS)"; return 0; }',
        "  local name=$1 log=$2 t=$3 n=$4 out; shift 4",
        '  for out in "${@:1:n}"; do rm -rf "$out"; mkdir -p "$out"; done; shift "$n"',
        '  echo "=== $(date -u +%H:%M:%S) start $name"',
        '  timeout -k 10 "$t" "$@" >"$log" 2>&1   # timeout signals its whole process group (the engine core too)',
        "  local rc=$?",
        '  echo "=== $(date -u +%H:%M:%S) end $name rc=$rc (log $log)"',
        '  [ $rc -eq 0 ] || { tail -n 15 "$log"; return 1; }',
        "}",
        f"mkdir -p {shlex.quote(first.run_dir)}",
        f"cat > {shlex.quote(first.run_dir + '/plan.json')} <<'PLAN_JSON'",
        json.dumps(merged_plan, indent=2),
        "PLAN_JSON",
    ]
    singles = [r for r in cmds.runs if r.branch == "single"]
    coordinated = [r for r in cmds.runs if r.label == "coordinated"]
    sharded = [r for r in cmds.runs if r.branch == "distributed" and r.label != "coordinated"]
    if singles:
        lines += ["", "# --- single-GPU runs: one job per node, at once; each node's runs in turn"]
        lines += _parallel_by_node(cmds, singles)
    if coordinated:
        lines += ["", "# --- coordinated: one vLLM server per node, then one LoadGen over HTTP (no servers when "
                  "ONLY_RUNS leaves its runs out)",
                  f"if {' || '.join(f'wanted {shlex.quote(r.name)}' for r in coordinated)}; then"]
        lines += [f"  {line}" for line in _coordinated(cmds, coordinated)]
        lines += ["fi"]
    if sharded:
        lines += ["", "# --- sharded: every node on its shard, at once"]
        lines += _parallel_by_node(cmds, sharded)
    lines += ["", 'echo "=== $(date -u +%H:%M:%S) all done, failed=$failed"', "exit $failed", ""]
    return "\n".join(lines)


def _parallel_by_node(cmds: Commands, runs: list[RunSpec]) -> list[str]:
    lines: list[str] = []
    for node in dict.fromkeys(r.label for r in runs):
        lines.append("(")
        lines += [f"  {_run_line(cmds, r)} || exit 1" for r in runs if r.label == node]
        lines.append(") &")
    lines += ["for job in $(jobs -p); do wait $job || failed=1; done"]
    return lines


def _coordinated(cmds: Commands, runs: list[RunSpec]) -> list[str]:
    plan = cmds.plans[[p.distributed for p in cmds.plans].index("coordinated")]
    state = f"{plan.run_dir}/distributed"
    lines = [f"mkdir -p {shlex.quote(state)}", f"rm -f {shlex.quote(state + '/servers.pids')}", "servers=()",
             'stop_servers() { for pid in "${servers[@]}"; do kill -TERM -- -$pid 2>/dev/null; done; sleep 5; '
             'for pid in "${servers[@]}"; do kill -KILL -- -$pid 2>/dev/null; done; servers=(); }',
             "trap stop_servers EXIT"]
    endpoints: list[str] = []
    urls = []
    for i, node in enumerate(plan.nodes):
        port = cmds.base_port + i
        url = f"http://127.0.0.1:{port}"
        urls.append(url)
        endpoints += ["--endpoint", f"{node}={url}"]
        flags = [*plan.server_engine_args, *cmds.engine_flags]
        cmd = shlex.join(local.serve_command(cmds.sut_python, plan.model_path, port, flags))
        env = _env_prefix(local.gpu_env(None, cmds.gpus, node) if cmds.gpus else {})
        log_path = shlex.quote(f"{state}/server-{node}.log")
        lines += [f'echo "=== $(date -u +%H:%M:%S) start server {node} on {url}"',
                  f"setsid env {env}{cmd} >{log_path} 2>&1 &", "servers+=($!)",
                  f'echo "$!" >>{shlex.quote(state + "/servers.pids")}   # process groups, as servers.json']
    # local.start_servers' wait: every /health answers 200, a server that exits fails at once, or the timeout
    health = ("import sys, time, urllib.request as u\n"
              f"deadline = time.monotonic() + {cmds.server_start_timeout_s}\n"
              "for url, pid in zip(sys.argv[1::2], sys.argv[2::2]):\n"
              "    while True:\n"
              "        try:\n"
              "            if u.urlopen(url + '/health', timeout=2).status == 200: break\n"
              "        except OSError: pass\n"
              "        try: gone = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] in 'ZX'\n"
              "        except OSError: gone = True\n"
              "        if gone: sys.exit(f'server {url} exited before it was ready')\n"
              "        if time.monotonic() > deadline: sys.exit(f'{url} not ready')\n"
              f"        time.sleep({HEALTH_POLL_S})\n")
    pairs = " ".join(f"{url} ${{servers[{i}]}}" for i, url in enumerate(urls))
    lines += [f"if {shlex.quote(cmds.sut_python)} -c {shlex.quote(health)} {pairs}; then",
              '  echo "=== $(date -u +%H:%M:%S) servers ready"']
    lines += [f"  {_run_line(cmds, r, endpoints)} || failed=1" for r in runs]
    lines += ["else", '  echo "servers not ready"; failed=1',
              *[f"  tail -n 30 {shlex.quote(f'{state}/server-{n}.log')}" for n in plan.nodes],
              "fi", "stop_servers", "trap - EXIT"]
    return lines


def main(args) -> int:
    """The `plan` subcommand: the plan as JSON, or with --commands the script (to --out or stdout)."""
    import sys
    from pathlib import Path

    from include import deployment
    from include.plan import PlanError

    try:
        dep = deployment.load()
        params = json.loads(Path(args.params).read_text()) if args.params else {}
        for item in args.param or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise PlanError(f"--param {item!r}: expected NAME=JSON, e.g. total_sample_count=4000")
            params[key] = _json_or_text(value)
        mode_params: dict[str, dict[str, Any]] = {}
        for item in args.mode_param or []:
            mode, sep, rest = item.partition(":")
            key, sep2, value = rest.partition("=")
            if not (sep and sep2):
                raise PlanError(f"--mode-param {item!r}: expected MODE:NAME=JSON, "
                                "e.g. coordinated:total_sample_count=8000")
            mode_params.setdefault(mode, {})[key] = _json_or_text(value)
        cmds = build(dep, params, args.run_id, distributed=args.distributed, mode_params=mode_params,
                     gpus=local.gpu_map(args.gpus) if args.gpus is not None else None,
                     engine_flags=shlex.split(args.engine_flags or ""), sut_python=args.sut_python,
                     base_port=args.base_port, branch=args.branch)
    except (PlanError, deployment.DeploymentError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = script(cmds) if args.commands else json.dumps(
        [p.to_dict() for p in cmds.plans], indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"written: {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def add_parser(sub) -> None:
    plan = sub.add_parser("plan", help="the DAG's plan for the deployment in MLPERF_*; --commands: as a bash script")
    plan.add_argument("--commands", action="store_true",
                      help="write the commands the local runner would run (one node per GPU with --gpus)")
    plan.add_argument("--params", help="JSON file of trigger params (the rest: the trigger form's defaults)")
    plan.add_argument("--param", action="append", metavar="NAME=JSON", help="one trigger param; repeatable")
    plan.add_argument("--run-id", default="manual", help="run id: the artefacts folder's name (default manual)")
    plan.add_argument("--distributed", action="append", choices=["coordinated", "sharded", "off"],
                      help="one plan per value, merged (default: the params' distributed)")
    plan.add_argument("--mode-param", action="append", metavar="MODE:NAME=JSON",
                      help="a param of one distributed mode's plan only, e.g. coordinated:user_conf_overrides=...")
    plan.add_argument("--gpus", help=f"NODE=GPU[:GPU],... (default ${local.GPUS_ENV}): each node's "
                                     "CUDA_VISIBLE_DEVICES")
    plan.add_argument("--engine-flags", help="SUT engine flags beyond the params, e.g. '--quantization fp8'")
    plan.add_argument("--base-port", type=int, default=BASE_PORT,
                      help="the coordinated branch's servers listen on 127.0.0.1:BASE_PORT+i (default %(default)s)")
    plan.add_argument("--branch", choices=["single", "distributed"],
                      help="only this branch's runs (e.g. the distributed branch again, its single-GPU runs kept)")
    plan.add_argument("--sut-python", help="interpreter of the SUT (default $MLPERF_SUT_PYTHON)")
    plan.add_argument("--out", help="file to write (default stdout)")
