"""`python -m include plan`: the DAG's plan for this deployment (MLPERF_* variables) and params, as JSON.

What the plan task would write to plan.json, made by the same code (`plan.make_plan`): each SUT run with its
arguments and output folders. The DAG's runners (local, kubernetes) are the only executors of a plan.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def main(args) -> int:
    from include import deployment
    from include.planning.plan import PlanError, make_plan, trigger_params

    try:
        dep = deployment.load()
        params = json.loads(Path(args.params).read_text()) if args.params else {}
        for item in args.param or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise PlanError(f"--param {item!r}: expected NAME=JSON, e.g. total_sample_count=4000")
            params[key] = _json_or_text(value)
        defaults = {name: param.value for name, param in trigger_params(dep).items()}
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise PlanError(f"{unknown[0]}: not a param of the DAG (params: {', '.join(defaults)})")
        plan = make_plan({**defaults, **params}, dep, args.run_id)
    except (PlanError, deployment.DeploymentError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(plan.to_dict(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"written: {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def add_parser(sub) -> None:
    plan = sub.add_parser("plan", help="the DAG's plan for the deployment in MLPERF_* and the given params, as JSON")
    plan.add_argument("--params", help="JSON file of trigger params (the rest: the trigger form's defaults)")
    plan.add_argument("--param", action="append", metavar="NAME=JSON", help="one trigger param; repeatable")
    plan.add_argument("--run-id", default="manual", help="run id: the artefacts folder's name (default manual)")
    plan.add_argument("--out", help="file to write (default stdout)")
