"""include/ reads as the stages: each folder imports the modules every stage shares and the stages before it, the
entry points (include/apps/) are apart from the library, which never imports them, and the top of include/ holds
only what no one stage owns (ARCHITECTURE.md, "include/ by stage")."""
from __future__ import annotations

from tests.test_import_circles import REPO, import_graph

# The data's way; a stage imports only those before it.
STAGES = ["planning", "runners", "results", "scoring", "analysis", "reporting", "history", "submission"]
SHARED = {"include.records", "include.mlperf_rules", "include.deployment"}
TOP = {"include.__main__", "include.pipeline", *SHARED}
# Each against the order, and why (ARCHITECTURE.md says the same).
EXCEPTIONS = {
    # the runner's record of a SUT that ended badly is written in the format its reader defines, once
    ("include.runners.local", "include.results.run_artifacts"),
    # regressions are judged against earlier comparable runs, read from the history
    ("include.analysis.regressions", "include.history.store"),
    # RunRecord carries result.json as the typed SutResult it is read into
    ("include.records", "include.results.sut_result"),
}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in [*STAGES, "apps"] else None


def against_the_order(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in sorted(graph.items()):
        if stage_of(module) == "apps" or module in ("include.__main__", "include.pipeline"):
            continue                      # the entry points and the one orchestration may import any stage
        for target in sorted(targets - {"include"}):
            if (module, target) in EXCEPTIONS:
                continue
            here, there = stage_of(module), stage_of(target)
            if there == "apps":
                wrong.append(f"{module} imports the entry point {target}")
            elif here is None and target not in SHARED:
                wrong.append(f"{module} (shared by every stage) imports {target}")
            elif there is None and target not in SHARED:
                wrong.append(f"{module} imports {target}, which is no stage's and not shared")
            elif here is not None and there is not None and STAGES.index(there) > STAGES.index(here):
                wrong.append(f"{module} ({here}) imports {target}, a later stage ({there})")
    return wrong


def test_each_stage_imports_only_the_shared_modules_and_the_stages_before_it():
    wrong = against_the_order(import_graph("include", REPO))
    assert not wrong, "against the data's way (ARCHITECTURE.md, include/ by stage):\n  " + "\n  ".join(wrong)


def test_the_check_sees_a_later_stage_and_an_entry_point():
    graph = {"include.results.x": {"include.analysis.y"}, "include.analysis.y": {"include.apps.cli"},
             "include.reporting.z": {"include.results.x", "include.records"}}
    assert against_the_order(graph) == ["include.analysis.y imports the entry point include.apps.cli",
                                        "include.results.x (results) imports include.analysis.y, a later stage "
                                        "(analysis)"]


def test_the_top_of_include_holds_only_what_no_stage_owns():
    top = {f"include.{path.stem}" for path in (REPO / "include").glob("*.py")} - {"include.__init__"}
    assert top <= TOP, f"put {sorted(top - TOP)} in the folder of its stage (ARCHITECTURE.md, include/ by stage)"
