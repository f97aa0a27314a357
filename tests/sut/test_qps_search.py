"""`search-qps` end to end on the tiny model (real vLLM on the CPU, real LoadGen): probes bisect the interval, each
lasts about --probe-duration-s whatever mlperf.conf asks, and search.json names the highest VALID rate."""
import json
import math
import re

import jsonschema
import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

PROBE_S = 3
SAMPLES = 64


def _logged(out, key):
    match = re.search(r'"key": "%s", "value": ([0-9.]+)' % key, (out / "mlperf_log_detail.txt").read_text())
    assert match, f"{key} not in {out}/mlperf_log_detail.txt"
    return float(match.group(1))


def test_search_bisects_with_short_probes_and_reports_the_best_valid_rate(tiny_model, tiny_dataset, tmp_path):
    done = run_cli("search-qps", "--model", tiny_model, "--dataset", tiny_dataset, "--total-sample-count", SAMPLES,
                   "--output-dir", tmp_path, "--node", "test-node", "--range", "Server=1:8", "--probes", 2,
                   "--probe-duration-s", PROBE_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    search = json.loads((tmp_path / "search.json").read_text())
    first, second = search["probes"]
    assert first["target_qps"] == 4.5  # the middle of 1:8; VALID raises the floor, INVALID lowers the ceiling
    assert second["target_qps"] == (6.25 if first["valid"] else 2.75)
    schema = json.loads((REPO / "sut_image" / "mlperf_sut" / "result.schema.json").read_text())
    for probe in search["probes"]:
        out = tmp_path / "Server" / f"qps-{probe['target_qps']:g}"
        assert probe["output_dir"] == str(out)
        jsonschema.validate(json.loads((out / "result.json").read_text()), schema)
        # mlperf.conf asks 13,368 queries of every llama3.1-8b Server test; a probe asks rate x duration
        assert _logged(out, "effective_min_query_count") == math.ceil(probe["target_qps"] * PROBE_S)
        # ... and LoadGen issues about that many (Poisson arrivals within the duration may add a few), not a
        # multiple of the 64 loaded samples as mlperf.conf's sample_concatenate_permutation would pad it to
        asked = math.ceil(probe["target_qps"] * PROBE_S)
        assert asked <= _logged(out, "result_query_count") <= 2 * asked < SAMPLES
        assert _logged(out, "effective_min_duration_ms") == PROBE_S * 1000
        assert _logged(out, "effective_target_qps") == probe["target_qps"]
        summary = (out / "mlperf_log_summary.txt").read_text()
        assert ("Result is : VALID" in summary) == probe["valid"]
        assert probe["valid"] or probe["invalid_reasons"]
    valid = [p for p in search["probes"] if p["valid"]]
    assert search["best"]["Server"] == (max(valid, key=lambda p: p["target_qps"]) if valid else None)
    best = search["best"]["Server"]["target_qps"] if valid else "none in the interval"
    assert f"highest VALID Server target QPS: {best}" in done.stdout
