"""Make a run's submission tree and check it: the one function the CLI and the DAG's `submission` task call.

The tree goes to <out>; the check's result to <out>/../submission_check.json beside it (outside the tree, which
must hold only what MLCommons reads), and each scenario's README.md lists the problems found under it, so a tree
that is not compliant says why where it is read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from include.records import RunRecord
from include.submission import checker, layout
from include.submission.system_desc import DeployFields

CHECK_FILE = "submission_check.json"


def deploy_fields(dep: Any) -> DeployFields:
    """The deploy-time fields of an include.deployment.Deployment."""
    return DeployFields(dep.division, dep.submitter, dep.system_status, dep.system_description)


def check_result(root: Path, problems: list[checker.Problem], tree: layout.SubmissionTree | None = None,
                 rules: checker.RoundChoice = checker.OUR_ROUND) -> dict:
    """The check's outcome: the checker round applied and why, every problem (its rule, file and message), and the
    same grouped by rule with paths relative to the tree, for a report whose first screen must stay readable."""
    groups: dict[str, list[str]] = {}
    for p in problems:
        path = Path(p.path)
        shown = str(path.relative_to(root)) if path.is_relative_to(root) else p.path
        groups.setdefault(p.rule, []).append(f"{shown}: {p.message}")
    result = {"line": checker.summary_line(problems), "passed": not problems, "tree": str(root),
              "version": rules.version, "version_why": rules.why,
              "problems": [p.line() for p in problems],
              "by_rule": [{"rule": rule, "count": len(items), "items": items} for rule, items in groups.items()]}
    if tree is not None:
        result["systems"] = tree.to_dict()["systems"]
        result["skipped"] = tree.skipped
    return result


def _annotate(tree: layout.SubmissionTree, problems: list[checker.Problem]) -> None:
    """Each scenario's README.md lists the problems of its folder and of its system's description (or says it
    passed)."""
    for readme in tree.root.glob(f"results/*/*/*/{layout.README}"):
        folder = readme.parent
        system = tree.root / "systems" / f"{folder.parent.parent.name}.json"
        mine = [p for p in problems if Path(p.path) in (folder, system) or folder in Path(p.path).parents]
        text = readme.read_text()
        text += ("\n## Submission check: passed\n" if not mine else
                 f"\n## Submission check: not compliant ({len(mine)} problems)\n\n"
                 + "".join(f"- [{p.rule}] {os.path.relpath(p.path, folder)}: {p.message}\n" for p in mine))
        readme.write_text(text)


def make(records: list[RunRecord], out_dir: Path, deploy: DeployFields, model_dir: str | None = None) -> dict:
    """Lay out the tree from the run's (scored) records, check it, write the check beside it; the check's dict."""
    out_dir = Path(out_dir)
    tree = layout.build(records, out_dir, deploy, model_dir)
    problems = checker.check(out_dir)
    _annotate(tree, problems)
    result = check_result(out_dir, problems, tree)
    (out_dir.parent / CHECK_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return result


def submission_task(plan: dict[str, Any], records: list[dict[str, Any]], deploy: Any) -> dict:
    """The DAG's `submission` task: <run_dir>/submission/ from the scored records."""
    return make([RunRecord.from_dict(r) for r in records], Path(plan["run_dir"]) / "submission",
                deploy_fields(deploy), plan["model_path"])
