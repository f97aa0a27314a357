"""The benchmark report: Markdown and one self-contained HTML page (charts inlined as data URIs).

Every figure in the report is read from the records and the analysis; nothing is typed in. The templates only lay
out rows this module prepares, so Markdown and HTML say the same thing.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from include import charts
from include.records import RunRecord
from include.scaling import exclusion_reason, loadgen_setting, scenario_key

if TYPE_CHECKING:  # pipeline imports this module; the type only
    from include.pipeline import Analysis

TEMPLATES = Path(__file__).resolve().parent / "templates"
FULL_DATASET_SAMPLES = 13368          # cnn_eval.json (datacenter); the accuracy targets need all of them
MIN_DURATION_MS = 600_000             # mlperf.conf for llama3.1-8b
OFFLINE_MIN_SAMPLES = 13368           # mlperf.conf: llama3_1-8b.Offline.min_query_count
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
# MLPerf compliance of the profile


def compliance(records: list[RunRecord]) -> dict[str, Any]:
    """Whether the profile can produce MLPerf-comparable figures, and every reason it cannot."""
    reasons: list[str] = []
    for r in records:
        result = r.result or {}
        where = f"{r.node} {r.scenario} {r.mode}"
        dataset = result.get("dataset") or {}
        total = dataset.get("total_sample_count")
        if total is not None and total < FULL_DATASET_SAMPLES:
            reasons.append(f"{where}: sample subset, {total:,} of {FULL_DATASET_SAMPLES:,} samples")
        if (result.get("model") or {}).get("load_format") == "dummy":
            reasons.append(f"{where}: dummy (random) weights")
        if r.mode != "performance":
            continue
        if prefix_caching(result):
            reasons.append(f"{where}: prompt prefix caching on (LoadGen repeats samples, and a prompt seen before "
                           "skips its prefill: throughput is overstated)")
        min_duration = loadgen_setting(r, "min_duration_ms", "min_duration")
        if min_duration is not None and float(min_duration) < MIN_DURATION_MS:
            reasons.append(f"{where}: min_duration shortened to {float(min_duration) / 1000:,.0f} s "
                           f"(MLPerf: {MIN_DURATION_MS / 1000:,.0f} s)")
        if loadgen_setting(r, "sample_concatenate_permutation") in (False, "0", "false"):  # 0 == False
            reasons.append(f"{where}: equal issue off (sample_concatenate_permutation=0; MLPerf's llama3.1-8b "
                           "rules turn it on, so every test issues whole passes over the data set)")
        if r.scenario == "Offline":
            count = loadgen_setting(r, "min_query_count")
            per_query = loadgen_setting(r, "samples_per_query")
            samples = max(float(x) for x in (count, per_query) if x is not None) if (count or per_query) else None
            if samples is not None and samples < OFFLINE_MIN_SAMPLES:
                reasons.append(f"{where}: min_query_count / samples per query {samples:,.0f} "
                               f"(MLPerf: {OFFLINE_MIN_SAMPLES:,})")
    return {"mlperf_compliant": not reasons and bool(records), "reasons": list(dict.fromkeys(reasons))}


def prefix_caching(result: dict[str, Any]) -> bool:
    """Whether the engine reused the KV cache of prompts seen before, as result.json records it. Results written
    before the SUT recorded the setting ran vLLM's default: on."""
    engine = result.get("engine") or {}
    if "enable_prefix_caching" in engine:
        return bool(engine["enable_prefix_caching"])
    return result.get("backend") == "vllm" and bool(engine)


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


def state(record: RunRecord) -> str:
    return charts.run_state(record)


# ------------------------------------------------------------------------------------------------------------------
# Rows the templates lay out


def _infrastructure(records: list[RunRecord]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        result = r.result or {}
        if not result or r.node in rows or "+" in r.node:   # a coordinated run is no node of its own
            continue
        acc = result.get("accelerator") or {}
        versions = result.get("versions") or {}
        engine = result.get("engine") or {}
        rows[r.node] = {
            "node": r.node, "accelerator": acc.get("name") or "n/a", "kind": acc.get("kind") or "n/a",
            "count": acc.get("count"), "memory_gib": num(acc.get("memory_gib")), "driver": acc.get("driver") or "n/a",
            "backend": result.get("backend") or "n/a",
            "model": f"{(result.get('model') or {}).get('name')} ({(result.get('model') or {}).get('load_format')})",
            "dtype": engine.get("dtype") or "n/a", "quantization": engine.get("quantization") or "none",
            "engine": engine_settings(engine),
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v),
        }
    for r in records:   # nodes that never wrote result.json still appear
        if "+" in r.node:
            continue
        rows.setdefault(r.node, {"node": r.node, "accelerator": "unknown (no result.json)", "kind": "n/a",
                                 "count": None, "memory_gib": "n/a", "driver": "n/a", "backend": "n/a",
                                 "model": "n/a", "dtype": "n/a", "quantization": "n/a", "engine": "",
                                 "versions": ""})
    return sorted(rows.values(), key=lambda row: row["node"])


def engine_settings(engine: dict[str, Any]) -> str:
    """The engine arguments of result.json beyond the table's own columns, as `key=value` (JSON for structures)."""
    shown = {"dtype", "quantization", "load_format"}
    return ", ".join(f"{key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
                     for key, value in sorted(engine.items()) if key not in shown)


def _result_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted((r for r in records if r.mode == "performance"),
                    key=lambda r: (scenario_key(r.scenario), r.branch, r.node)):
        lg = r.loadgen
        counts = (r.result or {}).get("counts") or {}
        timing = (r.result or {}).get("timing") or {}
        st = state(r)
        note = ""
        if st in ("FAILED", "MISSING"):
            note = r.error or "no error recorded"
        elif st == "INVALID":
            note = exclusion_reason(r) or ""
        rows.append({
            "node": r.node, "branch": r.branch, "scenario": r.scenario, "state": st,
            "tokens_per_second": num(lg.tokens_per_second if lg else None),
            "samples_per_second": num(lg.samples_per_second if lg else None, 2),
            "samples": count(counts.get("samples_completed")), "output_tokens": count(counts.get("output_tokens")),
            "duration_s": num(timing.get("duration_s") if timing.get("duration_s") is not None
                              else (lg.duration_s if lg else None)),
            "ttft_p50_ms": ms((lg.ttft_ns or {}).get("p50") if lg else None),
            "ttft_p99_ms": ms((lg.ttft_ns or {}).get("p99") if lg else None),
            "tpot_p50_ms": ms((lg.tpot_ns or {}).get("p50") if lg else None),
            "tpot_p99_ms": ms((lg.tpot_ns or {}).get("p99") if lg else None),
            "limits": charts.latency_limits_ms(r),
            "note": note, "run_dir": r.run_dir,
        })
    return rows


def _accuracy_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted((r for r in records if r.mode == "accuracy"), key=lambda r: (scenario_key(r.scenario), r.node)):
        acc = r.accuracy
        meaningful = (r.result or {}).get("accuracy_meaningful")
        if r.status != "completed":
            verdict = f"{state(r)}: {r.error or 'no error recorded'}"
        elif meaningful is False:
            verdict = "meaningless on dummy weights" + (f" ({acc.verdict})" if acc else "")
        elif acc is None:
            verdict = "not scored" + (f": {r.error}" if r.error else " (no model directory or data set given)")
        elif acc.passed is None:
            verdict = acc.verdict if "not applicable" in acc.verdict else f"targets not applicable: {acc.verdict}"
        else:
            verdict = ("PASS" if acc.passed else "FAIL") + f": {acc.verdict}"
            if acc.failures:
                verdict += " (" + "; ".join(acc.failures) + ")"
        rows.append({
            "node": r.node, "branch": r.branch, "scenario": r.scenario, "state": state(r),
            "rouge1": num(acc.rouge1, 4) if acc else "n/a", "rouge2": num(acc.rouge2, 4) if acc else "n/a",
            "rougeL": num(acc.rougeL, 4) if acc else "n/a", "rougeLsum": num(acc.rougeLsum, 4) if acc else "n/a",
            "gen_len": count(acc.gen_len) if acc else "n/a", "gen_num": count(acc.gen_num) if acc else "n/a",
            "target_set": (acc.target_set if acc and acc.target_set else "n/a"), "verdict": verdict,
        })
    return rows


def _scaling_rows(analysis: "Analysis") -> list[dict[str, Any]]:
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


def _plausibility_rows(analysis: "Analysis") -> list[dict[str, Any]]:
    return [{"node": p.node, "scenario": p.scenario, "accelerator": p.accelerator,
             "measured": num(p.measured_tokens_per_second), "compute": num(p.compute_bound_tokens_per_second),
             "bandwidth": num(p.bandwidth_bound_tokens_per_second),
             "verdict": "IMPLAUSIBLE" if p.implausible else ("no bound" if p.compute_bound_tokens_per_second is None
                                                             else "plausible"),
             "implausible": p.implausible, "explanation": p.explanation} for p in analysis.plausibility]


def _regression_rows(analysis: "Analysis") -> list[dict[str, Any]]:
    return [{"metric": g.metric, "node": g.node, "scenario": g.scenario, "branch": g.branch,
             "current": ms(g.current) + " ms" if g.metric.endswith("_ns") else num(g.current, 2),
             "baseline": ms(g.baseline) + " ms" if g.metric.endswith("_ns") else num(g.baseline, 2),
             "change": f"{g.change_pct:+.1f}%", "p_value": "n/a" if g.p_value is None else f"{g.p_value:.3g}",
             "runs": len(g.baseline_runs), "explanation": g.explanation} for g in analysis.regressions]


def _artefact_files(records: list[RunRecord]) -> list[str]:
    files = []
    for r in records:
        for name in ((r.result or {}).get("files") or []):
            files.append(str(Path(r.run_dir) / name))
    return files


def context(analysis: "Analysis", chart_paths: dict[str, Path], produced: list[Path]) -> dict[str, Any]:
    records = list(analysis.records)
    states = [state(r) for r in records if r.mode == "performance"]
    return {
        "run_id": analysis.run_id, "created_utc": analysis.created_utc,
        "threshold_pct": analysis.threshold_pct,
        "summary": {"runs": len(records), "performance": len(states), "valid": states.count("VALID"),
                    "invalid": states.count("INVALID"), "failed": states.count("FAILED") + states.count("MISSING"),
                    "accuracy": sum(1 for r in records if r.mode == "accuracy"),
                    "implausible": sum(1 for p in analysis.plausibility if p.implausible),
                    "regressions": len(analysis.regressions)},
        "compliance": analysis.compliance or compliance(records),
        "infrastructure": _infrastructure(records),
        "results": _result_rows(records),
        "failed": [{"node": r.node, "branch": r.branch, "scenario": r.scenario, "mode": r.mode, "state": state(r),
                    "error": r.error or "no error recorded"} for r in records if r.status != "completed"],
        "accuracy": _accuracy_rows(records),
        "scaling": _scaling_rows(analysis),
        "plausibility": _plausibility_rows(analysis),
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


def build_report(analysis: "Analysis", out_dir: Path) -> ReportPaths:
    """Charts, report.md and report.html (self-contained) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart_paths = charts.render_all(list(analysis.records), list(analysis.scaling), list(analysis.history), out_dir)
    md_path, html_path = out_dir / REPORT_MD, out_dir / REPORT_HTML
    produced = [md_path, html_path, out_dir / ANALYSIS_JSON, *chart_paths.values()]
    ctx = context(analysis, chart_paths, produced)
    md_env, html_env = _environments()
    md_path.write_text(md_env.get_template("report.md.j2").render(**ctx), encoding="utf-8")
    images = {name: _data_uri(path) for name, path in chart_paths.items()}
    html_path.write_text(html_env.get_template("report.html.j2").render(**ctx, images=images), encoding="utf-8")
    (out_dir / ANALYSIS_JSON).write_text(json.dumps(analysis.to_dict(), indent=2, default=str), encoding="utf-8")
    return ReportPaths(md_path, html_path, chart_paths)


__all__ = ["ReportPaths", "build_report", "compliance", "context", "md_cell"]
