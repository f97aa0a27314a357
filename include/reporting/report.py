"""The benchmark report: Markdown and one self-contained HTML page (charts inlined as data URIs).

Every figure in the report is read from the records and the analysis; nothing is typed in. The templates only lay
out rows this module prepares, so Markdown and HTML say the same thing.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from include.analysis import Analysis
from include.analysis.scaling import scenario_key
from include.analysis.verdict import RunVerdict
from include.records import RunRecord
from include.reporting import charts

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPORT_MD, REPORT_HTML, ANALYSIS_JSON = "report.md", "report.html", "analysis.json"


@dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    html: Path
    charts: dict[str, Path]

    def to_dict(self) -> dict[str, Any]:
        return {"markdown": str(self.markdown), "html": str(self.html),
                "charts": {k: str(v) for k, v in self.charts.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReportPaths":
        return cls(Path(data["markdown"]), Path(data["html"]), {k: Path(v) for k, v in data["charts"].items()})


# ------------------------------------------------------------------------------------------------------------------
# Formatting


def num(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{float(value):,.{digits}f}"


def count(value: Any) -> str:
    return "n/a" if value is None else f"{int(value):,}"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def ms(value_ns: float | None) -> str:
    return "n/a" if value_ns is None else f"{value_ns / 1e6:,.1f}"


def md_cell(value: Any) -> str:
    """A value safe inside a Markdown table cell (pipes and line breaks would break the table)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ").replace("<", "&lt;")


# ------------------------------------------------------------------------------------------------------------------
# Rows the templates lay out


def _infrastructure(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per node and engine configuration (Offline and Server may use different engine settings)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        sut = r.sut
        if sut is None or "+" in r.node:   # a coordinated run is no node of its own
            continue
        engine = engine_settings(sut.engine)
        key = (r.node, engine + (f" preset {sut.engine_preset.describe()}" if sut.engine_preset else ""))
        if key in rows:
            rows[key]["scenarios"].append(f"{r.scenario} {r.mode}")
            continue
        acc = sut.accelerator
        rows[key] = {
            "node": r.node, "accelerator": acc.name, "kind": acc.kind, "count": acc.count,
            "memory_gib": num(acc.memory_gib), "driver": acc.driver or "n/a", "backend": sut.backend,
            "model": f"{sut.model.name} ({sut.model.load_format})",
            "dtype": sut.engine.get("dtype") or "n/a", "quantization": sut.engine.get("quantization") or "none",
            "engine": engine, "preset": sut.engine_preset.describe() if sut.engine_preset else "none",
            "scenarios": [f"{r.scenario} {r.mode}"],
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(sut.versions.items()) if v),
        }
    known = {node for node, _ in rows}
    for r in records:   # nodes with no result.json (never ran, or another harness's logs) still appear
        if "+" in r.node or r.node in known:
            continue
        known.add(r.node)
        rows[(r.node, "")] = {"node": r.node, "accelerator": "unknown (no result.json)", "kind": "n/a",
                              "count": None, "memory_gib": "n/a", "driver": "n/a", "backend": "n/a",
                              "model": "unknown", "dtype": "unknown", "quantization": "unknown", "engine": "unknown",
                              "preset": "unknown",
                              "scenarios": [], "versions": (f"loadgen {r.loadgen.loadgen_version}"
                                                            if r.loadgen and r.loadgen.loadgen_version else "")}
    out = sorted(rows.values(), key=lambda row: (row["node"], row["engine"]))
    for row in out:
        row["scenarios"] = ", ".join(row["scenarios"])
    return out


def engine_settings(engine: dict[str, Any]) -> str:
    """The engine arguments of result.json beyond the table's own columns, as `key=value` (JSON for structures)."""
    shown = {"dtype", "quantization", "load_format"}
    return ", ".join(f"{key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
                     for key, value in sorted(engine.items()) if key not in shown)


def _result_rows(records: list[RunRecord], verdicts: dict[str, RunVerdict]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted((r for r in records if r.mode == "performance"),
                    key=lambda r: (scenario_key(r.scenario), r.branch, r.node)):
        lg = r.loadgen
        sut = r.sut
        v = verdicts[r.run_dir]
        note = "; ".join(v.invalid_reasons) if v.state == "INVALID" else (v.cause if v.failed else "")
        duration = sut.timing.duration_s if sut and sut.timing.duration_s is not None else (
            lg.duration_s if lg else None)
        rows.append({
            "node": r.node, "branch": r.branch, "scenario": r.scenario, "state": v.state, "flags": v.flags,
            "tokens_per_second": num(lg.tokens_per_second if lg else None),
            "samples_per_second": num(lg.samples_per_second if lg else None, 2),
            "samples": count(sut.counts.samples_completed if sut else (lg.result_samples if lg else None)),
            "output_tokens": count(sut.counts.output_tokens if sut else None),
            "duration_s": num(duration),
            "ttft_p50_ms": ms((lg.ttft_ns or {}).get("p50") if lg else None),
            "ttft_p99_ms": ms((lg.ttft_ns or {}).get("p99") if lg else None),
            "tpot_p50_ms": ms((lg.tpot_ns or {}).get("p50") if lg else None),
            "tpot_p99_ms": ms((lg.tpot_ns or {}).get("p99") if lg else None),
            "limits": charts.latency_limits_ms(r),
            "note": note, "run_dir": r.run_dir,
        })
    return rows


def _accuracy_rows(records: list[RunRecord], verdicts: dict[str, RunVerdict]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted((r for r in records if r.mode == "accuracy"), key=lambda r: (scenario_key(r.scenario), r.node)):
        acc = r.accuracy
        v = verdicts[r.run_dir]
        rows.append({
            "node": r.node, "branch": r.branch, "scenario": r.scenario, "state": v.state,
            "rouge1": num(acc.rouge1, 4) if acc else "n/a", "rouge2": num(acc.rouge2, 4) if acc else "n/a",
            "rougeL": num(acc.rougeL, 4) if acc else "n/a", "rougeLsum": num(acc.rougeLsum, 4) if acc else "n/a",
            "gen_len": count(acc.gen_len) if acc else "n/a", "gen_num": count(acc.gen_num) if acc else "n/a",
            "target_set": (acc.target_set if acc and acc.target_set else "n/a"),
            "verdict": f"{(v.accuracy or 'not scored').upper() if v.accuracy in ('pass', 'fail') else v.accuracy}: "
                       f"{v.accuracy_text if not v.failed else v.cause}",
        })
    return rows


def _scaling_rows(analysis: Analysis) -> list[dict[str, Any]]:
    rows = []
    for s in analysis.scaling:
        rows.append({
            "scenario": s.scenario, "nodes": ", ".join(s.nodes) or "none",
            "aggregate_tps": num(s.aggregate_tokens_per_second),
            "aggregate_sps": num(s.aggregate_samples_per_second, 2),
            "window_s": num(s.window_s), "single_sum_tps": num(s.single_sum_tokens_per_second),
            "efficiency": pct(s.efficiency), "above_100": s.efficiency is not None and s.efficiency > 1.0,
            "balance": [{"node": b.node, "samples": count(b.samples), "output_tokens": count(b.output_tokens),
                         "share": pct(b.share_of_tokens), "tps": num(b.tokens_per_second)} for b in s.balance],
            "excluded": sorted(s.excluded.items()), "flags": list(s.flags),
        })
    return rows


def _plausibility_rows(analysis: Analysis) -> list[dict[str, Any]]:
    return [{"node": p.node, "scenario": p.scenario, "accelerator": p.accelerator,
             "measured": num(p.measured_tokens_per_second), "compute": num(p.compute_bound_tokens_per_second),
             "bandwidth": num(p.bandwidth_bound_tokens_per_second),
             "verdict": "IMPLAUSIBLE" if p.implausible else ("no bound" if p.compute_bound_tokens_per_second is None
                                                             else "plausible"),
             "implausible": p.implausible, "explanation": p.explanation} for p in analysis.plausibility]


def seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.1f}"


_GPU_TIME_EXPLANATION = (
    "One row per SUT process (one engine): start-up = process start to engine ready (imports, weights, CUDA graphs, "
    "warm-up); timed = the sum of its LoadGen tests' durations; other = the rest (between tests, writing logs); "
    "teardown = the last test's end to the stop after the engine's shutdown; share = timed / wall. The total counts "
    "only the processes with a complete clock: an unknown one is neither 0% nor 100%.")


def _gpu_time(analysis: Analysis) -> dict[str, Any]:
    """The budget's one line (the total share against the goal), its table per process and what it cannot see."""
    budget = analysis.gpu_time
    goal = f"goal >= {100 * budget.goal:.0f}%"
    unknown = budget.unknown_processes
    if budget.share is None:
        why = (f"none of the {unknown} SUT process(es) has a complete clock" if unknown
               else "no in-process engine ran: see what is not covered below")
        line = f"GPU time budget: unknown ({why}; {goal})"
    else:
        judged = ("not judged: " + (f"{len(budget.shortened)} test(s)" if len(budget.shortened) > 1 else
                                    budget.shortened[0]) + " shorter than MLPerf's minimum duration, where start-up "
                  "weighs more" if budget.shortened else "met" if budget.meets_goal else "not met")
        line = (f"GPU time budget: {pct(budget.share)} of {budget.wall_s:,.0f} s of GPU time inside LoadGen's timed "
                f"tests ({goal}: {judged})")
        if unknown:
            line += f"; {unknown} process(es) with an unknown clock not counted"
    rows = [{"node": p.node, "branch": p.branch, "tests": ", ".join(p.tests), "startup": seconds(p.startup_s),
             "timed": seconds(p.timed_s), "other": seconds(p.other_s), "teardown": seconds(p.teardown_s),
             "wall": seconds(p.wall_s), "share": "unknown" if p.share is None else pct(p.share),
             "below_goal": p.share is not None and p.share < budget.goal, "unknown": p.unknown or ""}
            for p in budget.processes]
    return {"line": line, "met": budget.meets_goal, "processes": rows, "not_covered": list(budget.not_covered),
            "explanation": _GPU_TIME_EXPLANATION}


def _regression_rows(analysis: Analysis) -> list[dict[str, Any]]:
    return [{"metric": g.metric, "node": g.node, "scenario": g.scenario, "branch": g.branch,
             "current": ms(g.current) + " ms" if g.metric.endswith("_ns") else num(g.current, 2),
             "baseline": ms(g.baseline) + " ms" if g.metric.endswith("_ns") else num(g.baseline, 2),
             "change": f"{g.change_pct:+.1f}%", "p_value": "n/a" if g.p_value is None else f"{g.p_value:.3g}",
             "runs": len(g.baseline_runs), "explanation": g.explanation} for g in analysis.regressions]


def _artefact_files(records: list[RunRecord]) -> list[str]:
    """The files each SUT run wrote (its result.json's list); one gone since (a trace left out of a copy) says so."""
    paths = [Path(r.run_dir) / name for r in records if r.sut for name in r.sut.files]
    return [str(p) if p.exists() else f"{p} (written by the SUT, absent here)" for p in paths]


def _loadgen_messages(analysis: Analysis) -> list[dict[str, Any]]:
    """LoadGen's errors and warnings, by run: an error makes the run not submission-grade."""
    rows = []
    for v in analysis.verdict.runs:
        for kind, items in (("error", v.loadgen_errors), ("warning", v.loadgen_warnings)):
            for key, text in items.items():
                rows.append({"run": v.name, "kind": kind, "key": key, "text": text})
    return rows


def _grouped_reasons(verdict: Any) -> list[str]:
    """The compliance reasons once each, naming the runs they hold for: 'dummy (random) weights: h200-0 Offline
    performance, h200-0 Server performance', not one line per run and reason."""
    runs_of: dict[str, list[str]] = {}
    for v in verdict.runs:
        for why in v.compliance_reasons:
            runs_of.setdefault(why, []).append(f"{v.node} {v.scenario} {v.mode}")
    return [f"{why}: {', '.join(runs)}" for why, runs in runs_of.items()]


def context(analysis: Analysis, chart_paths: dict[str, Path], produced: list[Path],
            submission: dict[str, Any] | None = None) -> dict[str, Any]:
    records = list(analysis.records)
    verdict = analysis.verdict
    verdicts = {r.run_dir: v for r, v in zip(records, verdict.runs)}
    states = [v.state for v in verdict.runs if v.mode == "performance"]
    return {
        "run_id": analysis.run_id, "created_utc": analysis.created_utc,
        "threshold_pct": analysis.threshold_pct,
        "headline": verdict.headline, "status": verdict.status, "tone": verdict.tone,
        "summary": {"runs": len(records), "performance": len(states), "valid": states.count("VALID"),
                    "invalid": states.count("INVALID"), "failed": states.count("FAILED") + states.count("MISSING"),
                    "accuracy": sum(1 for r in records if r.mode == "accuracy"),
                    "implausible": len(verdict.implausible), "regressions": len(analysis.regressions)},
        "compliance": {"state": verdict.compliance, "reasons": _grouped_reasons(verdict)},
        "submission_grade": verdict.submission_grade,
        "submission": submission,      # include/submission/run.py's check of the run's tree (None: not made)
        "loadgen_messages": _loadgen_messages(analysis),
        "infrastructure": _infrastructure(records),
        "results": _result_rows(records, verdicts),
        "failed": [{"name": v.name, "state": v.state, "cause": v.cause} for v in verdict.failed],
        "accuracy": _accuracy_rows(records, verdicts),
        "scaling": _scaling_rows(analysis),
        "plausibility": _plausibility_rows(analysis),
        "gpu_time": _gpu_time(analysis),
        "regressions": _regression_rows(analysis),
        "regression_notes": list(analysis.notes),
        "charts": {name: path.name for name, path in chart_paths.items()},
        "produced": [p.name for p in produced],
        "artefacts": _artefact_files(records),
    }


def _environments() -> tuple[Environment, Environment]:
    filters = {"md": md_cell}
    md = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False, undefined=StrictUndefined,
                     trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    html = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)
    md.filters.update(filters)
    return md, html


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def build_report(analysis: Analysis, out_dir: Path, submission: dict[str, Any] | None = None) -> ReportPaths:
    """Charts, report.md and report.html (self-contained) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart_paths = charts.render_all(list(analysis.records), list(analysis.scaling), list(analysis.history), out_dir)
    md_path, html_path = out_dir / REPORT_MD, out_dir / REPORT_HTML
    produced = [md_path, html_path, out_dir / ANALYSIS_JSON, *chart_paths.values()]
    ctx = context(analysis, chart_paths, produced, submission)
    md_env, html_env = _environments()
    md_path.write_text(md_env.get_template("report.md.j2").render(**ctx), encoding="utf-8")
    images = {name: _data_uri(path) for name, path in chart_paths.items()}
    html_path.write_text(html_env.get_template("report.html.j2").render(**ctx, images=images), encoding="utf-8")
    (out_dir / ANALYSIS_JSON).write_text(json.dumps(analysis.to_dict(), indent=2, default=str), encoding="utf-8")
    return ReportPaths(md_path, html_path, chart_paths)


__all__ = ["ReportPaths", "build_report", "context", "md_cell"]
