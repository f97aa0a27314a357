"""What the Benchmarks page shows beside the trends (trends.py): the run table's headline figures and the comparison
of two runs, as pure functions of the history store's rows. A run's verdict is shown as the history stored it
(`RunRow.verdict`, `.state`, `.tone`): nothing here re-derives it.

Nothing here touches the database, Airflow or the web framework: the functions take the store's frozen dataclasses
(`RunRow`, `ResultRow`, `PublishedRow`) and return plain dicts and lists, unit-tested without a server.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from include.analysis.metrics import METRICS, Metric, change_pct
from include.analysis.published import best_published
from include.analysis.verdict import differences

from .trends import PUBLISHED_ROUNDS_SHOWN, accelerator_key, fmt, settings_words

__all__ = ["METRICS", "compare_runs", "fmt", "judge", "run_headline", "run_versions", "short_hash"]


def series_key(row) -> tuple[str, str, str]:
    return (row.scenario, row.branch, row.node)


def series_label(key: tuple[str, str, str]) -> str:
    scenario, branch, node = key
    return f"{scenario} · {branch} · {node}"


def versions_text(versions: dict[str, Any] | None) -> str:
    if not versions:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))


def short_hash(value: str | None, n: int = 12) -> str:
    return (value or "—")[:n]


# ----------------------------------------------------------------------------------------------------------------
# The run table's headline figures


def run_headline(results: Sequence) -> dict[str, Any]:
    """Best throughput (with where it was measured), worst TTFT/TPOT p99, best ROUGE-L of one run's SUT runs."""
    perf = [r for r in results if r.mode == "performance" and r.status == "completed"]
    acc = [r for r in results if r.mode == "accuracy" and r.status == "completed"]

    def best(rows, name, pick: Callable = max):
        rows = [r for r in rows if getattr(r, name) is not None]
        return pick(rows, key=lambda r: getattr(r, name)) if rows else None

    trusted = [r for r in perf if r.valid is not False and r.plausibility != "implausible"]
    top = best(trusted, "tokens_per_second") or best(perf, "tokens_per_second")
    ttft = best(perf, "ttft_p99_ns")
    tpot = best(perf, "tpot_p99_ns")
    rouge = best(acc, "rougeL")
    return {
        "tokens_per_second": top.tokens_per_second if top else None,
        "tokens_per_second_where": series_label(series_key(top)) if top else None,
        "tokens_per_second_valid": top.valid if top else None,
        "tokens_per_second_implausible": top.plausibility == "implausible" if top else None,
        "ttft_p99_ms": METRICS["ttft_p99_ns"].display(ttft.ttft_p99_ns) if ttft else None,
        "tpot_p99_ms": METRICS["tpot_p99_ns"].display(tpot.tpot_p99_ns) if tpot else None,
        "rougeL": rouge.rougeL if rouge else None,
        "accuracy_passed": rouge.accuracy_passed if rouge else None,
    }


def run_versions(results: Sequence) -> dict[str, Any]:
    """The versions and configuration hashes of one run's SUT runs (the run page's header, not the run table)."""
    return {"versions": versions_text(next((r.versions for r in results if r.versions), None)),
            "config_hashes": sorted({short_hash(r.config_hash) for r in results if r.config_hash})}


# ----------------------------------------------------------------------------------------------------------------
# Comparing two runs


COMPARED_METRICS = ("tokens_per_second", "samples_per_second", "ttft_p50_ns", "ttft_p99_ns", "tpot_p50_ns",
                    "tpot_p99_ns", "latency_p99_ns", "duration_s", "output_tokens", "rouge1", "rouge2", "rougeL",
                    "rougeLsum", "gen_len", "gen_num")


def judge(metric: Metric, pct: float | None, tolerance_pct: float = 0.5) -> str:
    """'better', 'worse' or 'same' in the metric's own direction; 'neutral' for metrics with no direction."""
    if pct is None or metric.better == "none":
        return "neutral"
    if abs(pct) < tolerance_pct:
        return "same"
    improved = pct > 0 if metric.better == "higher" else pct < 0
    return "better" if improved else "worse"


def _state(row) -> str:
    if row is None:
        return "absent"
    if row.verdict:
        return row.verdict
    if row.status != "completed":
        return row.status
    if row.mode == "performance":
        return {True: "VALID", False: "INVALID"}.get(row.valid, "no verdict")
    return {True: "targets passed", False: "targets failed"}.get(row.accuracy_passed, "targets n/a")


def compare_runs(a_results: Sequence, b_results: Sequence, published: Sequence = ()) -> list[dict[str, Any]]:
    """Run B against run A (the baseline), SUT run by SUT run (branch, node, scenario, mode), metric by metric.

    A difference is judged better or worse only between the same comparability key; across keys the group lists
    the settings that differ instead. Published MLPerf results for the same accelerator and scenario are the
    group's reference (best per round)."""
    def index(rows):
        return {(r.branch, r.node, r.scenario, r.mode): r for r in rows}

    a_by, b_by = index(a_results), index(b_results)
    groups = []
    # Page order: scenario, then single before distributed, then node, performance before accuracy.
    for key in sorted(set(a_by) | set(b_by), key=lambda k: (k[2], k[0] != "single", k[1], k[3] != "performance")):
        a, b = a_by.get(key), b_by.get(key)
        mode = key[3]
        # Different settings make a difference no improvement and no regression: say what differs instead.
        comparable = bool(a and b and a.comparability_hash and a.comparability_hash == b.comparability_hash)
        trusted = comparable and all(r.plausibility != "implausible" for r in (a, b))
        rows = []
        for name in COMPARED_METRICS:
            metric = METRICS[name]
            if metric.mode != mode:
                continue
            av = metric.display(getattr(a, name)) if a is not None else None
            bv = metric.display(getattr(b, name)) if b is not None else None
            if av is None and bv is None:
                continue
            pct = change_pct(current=bv, baseline=av)
            rows.append({"metric": name, "label": metric.label, "unit": metric.unit, "digits": metric.digits,
                         "a": av, "b": bv, "change_pct": pct,
                         "judgement": judge(metric, pct) if trusted else "not-comparable"})
        groups.append({
            "branch": key[0], "node": key[1], "scenario": key[2], "mode": mode,
            "a_state": _state(a), "b_state": _state(b),
            "a_config": a.config_hash if a else None, "b_config": b.config_hash if b else None,
            "same_config": comparable,
            "differences": differences(a.comparability or {}, b.comparability or {}) if a and b else [],
            "a_settings": settings_words(a.comparability) if a else None,
            "b_settings": settings_words(b.comparability) if b else None,
            "published": [p.label for accelerator in sorted({accelerator_key(r.accelerator) for r in (a, b)
                                                             if r and r.accelerator})
                          for p in best_published(published, accelerator, key[2], PUBLISHED_ROUNDS_SHOWN)]
            if mode == "performance" else [],
            "implausible": [side for side, r in (("A", a), ("B", b)) if r and r.plausibility == "implausible"],
            "metrics": rows,
        })
    return groups
