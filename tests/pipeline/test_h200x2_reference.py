"""benchmarks/h200x2_reference.py prints the issue's last line from the committed 2x H200 logs, with the pipeline's
own scaling figures, and None where the committed logs hold no LoadGen result (never a progress-line estimate)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = ["x2_single_tok_s", "x2_coordinated_tok_s", "x2_sharded_tok_s", "x2_coordinated_eff", "x2_sharded_eff",
        "h200_http_vs_inproc", "h200_offline_fp8_tok_s", "h200_server_max_valid_qps"]


def test_last_line_holds_the_committed_figures():
    proc = subprocess.run([sys.executable, "benchmarks/h200x2_reference.py"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    last = dict(item.split("=", 1) for item in proc.stdout.strip().splitlines()[-1].split())
    assert list(last) == KEYS
    # two single GPUs, the sharded pair and the coordinated pair, as the report computes them
    assert float(last["x2_single_tok_s"]) == 15603.61
    assert float(last["x2_sharded_eff"]) == 0.9782 and float(last["x2_sharded_tok_s"]) == 15262.81
    assert float(last["x2_coordinated_eff"]) == 0.7436
    # the one-GPU HTTP Offline runs were killed before LoadGen finished: no ratio is invented
    assert last["h200_http_vs_inproc"] == "None"
    assert float(last["h200_offline_fp8_tok_s"]) == 7940.02 and float(last["h200_server_max_valid_qps"]) == 55.62
