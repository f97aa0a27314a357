"""TEST06 verification: the three criteria and the output text of MLCommons' compliance/TEST06/run_verification.py.

Accuracy logs are written here in LoadGen's format (int32 token ids as hex); each case is one a submitter would
meet: a clean run, an output padded with EOS tokens, a wrong token count, a first token that differs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from include.submission import test06

EOS = 128009


def entry(tokens, first=None, count=None):
    hexed = np.asarray(tokens, dtype=np.int32).tobytes().hex().upper()
    sample = {"seq_id": 0, "qsl_idx": 0, "data": hexed}
    if first is not None:
        sample["token_data"] = np.asarray([first], dtype=np.int32).tobytes().hex().upper()
    sample["token_count"] = len(tokens) if count is None else count
    return sample


def write_log(tmp_path, samples):
    path = tmp_path / "compliance"
    path.mkdir()
    (path / test06.ACCURACY_LOG).write_text(json.dumps(samples))
    return path


def test_a_clean_server_run_passes_and_writes_the_reference_output(tmp_path):
    log = write_log(tmp_path, [entry([5, 6, EOS], first=5), entry([7, 8, 9], first=7)])
    result = test06.write_verification(log, tmp_path / "out", "Server", EOS)
    assert result.passed
    text = (tmp_path / "out" / "TEST06" / "verify_accuracy.txt").read_text()
    assert text == ("First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
                    "TEST06 verification complete\n")
    assert (tmp_path / "out/TEST06/accuracy/mlperf_log_accuracy.json").read_bytes() == \
        (log / test06.ACCURACY_LOG).read_bytes()


def test_offline_skips_the_first_token_check(tmp_path):
    log = write_log(tmp_path, [entry([5, 6])])           # Offline logs no token_data
    result = test06.verify(log / test06.ACCURACY_LOG, "Offline", EOS)
    assert result.first_token is None and result.passed
    assert result.text().splitlines()[0] == "First token check pass: Skipped"


@pytest.mark.parametrize("samples, scenario, failed", [
    ([entry([5, EOS, EOS], first=5)], "Server", "EOS check pass: False"),
    ([entry([5, 6], first=5, count=3)], "Server", "Sample length check pass: False"),
    ([entry([5, 6], first=9)], "Interactive", "First token check pass: False"),
    ([entry([5, 6])], "Server", "First token check pass: False"),         # no token_data in a Server log
])
def test_each_criterion_fails_as_the_reference_does(tmp_path, samples, scenario, failed):
    result = test06.verify(write_log(tmp_path, samples) / test06.ACCURACY_LOG, scenario, EOS)
    assert not result.passed
    lines = result.text().splitlines()
    assert failed in lines and lines[-1] == "TEST06 verification failed"
    assert not all(test06.read_verification_text(result.text()).values())


def test_like_the_reference_the_first_position_is_never_an_eos_failure(tmp_path):
    # run_verification.py walks back from the end while i > 0: [EOS, EOS] has one EOS looked at, and passes.
    result = test06.verify(write_log(tmp_path, [entry([EOS, EOS])]) / test06.ACCURACY_LOG, "Offline", EOS)
    assert result.eos
