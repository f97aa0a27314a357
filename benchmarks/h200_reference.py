"""Figures of the committed H200 reference run (reference/h200/), read with the pipeline's own parser.

Each folder of reference/h200/ is one run of benchmarks/h200/session.sh (or of offline_vs_raw.py) on one NVIDIA
H200 with dummy weights. A run that the plausibility check flags (the prefix-cache run: prompts seen before skip
prefill) is printed but never used for a headline figure. Last line:
`h200_offline_fp8_tok_s=.. h200_offline_bf16_tok_s=.. h200_sut_vs_raw=.. h200_server_max_valid_qps=..`

    PYTHONPATH=. .venv/bin/python benchmarks/h200_reference.py
"""
from __future__ import annotations

import json
from pathlib import Path

from include import plausibility, run_artifacts

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "h200"


def main() -> None:
    offline: dict[str, tuple[float, float | None]] = {}   # dtype label -> (SUT tokens/s, SUT / raw)
    server_valid: list[float] = []
    for run in sorted(p for p in REFERENCE.iterdir() if (p / "single").is_dir()):
        for _, run_dir in run_artifacts.discover_runs(run):
            record = run_artifacts.read_run(run_dir, "single")
            check = plausibility.check_record(record)
            lg, result = record.loadgen, record.result
            label = "fp8" if result["engine"].get("quantization") == "fp8" else "bf16"
            qps = result["loadgen_settings"].get("server_target_qps")
            print(f"{run.name:28s} {record.scenario:8s} {label:5s} {'VALID' if lg.valid else 'INVALID':8s} "
                  f"{lg.tokens_per_second:>9,.1f} tokens/s  {'IMPLAUSIBLE' if check.implausible else 'plausible'}"
                  + (f"  target {qps:g} QPS" if record.scenario == "Server" else ""))
            if check.implausible or not lg.valid:
                continue
            if record.scenario == "Offline":
                comparison = run_dir / "raw_vs_sut.json"
                ratio = json.loads(comparison.read_text())["sut_vs_raw"] if comparison.exists() else None
                offline[label] = (lg.tokens_per_second, ratio)
            elif record.scenario == "Server":
                server_valid.append(qps)
    fp8, bf16 = offline.get("fp8", (None, None)), offline.get("bf16", (None, None))
    print(f"h200_offline_fp8_tok_s={fp8[0]} h200_offline_bf16_tok_s={bf16[0]} h200_sut_vs_raw={fp8[1]} "
          f"h200_server_max_valid_qps={max(server_valid) if server_valid else None}")


if __name__ == "__main__":
    main()
