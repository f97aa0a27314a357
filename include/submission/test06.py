"""TEST06 (llama3.1-8b's one compliance test): verify a compliance run's accuracy log as MLCommons does.

The three criteria and the output text follow mlcommons/inference compliance/TEST06/run_verification.py exactly:
the first token LoadGen was told (token_data) matches the output's first token (not for Offline, which reports no
first token), an output ends with at most one EOS token, and the token count reported to LoadGen equals the
output's length. The output goes to <out>/TEST06/verify_accuracy.txt with the log copied to
<out>/TEST06/accuracy/, as that script writes it; the submission checker reads those lines
(submission_checker/checks/compliance_check.py).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST = "TEST06"
VERIFY_FILE = "verify_accuracy.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
TOKEN_DTYPE = np.int32          # run_verification.py's default --dtype; our SUT reports int32 token ids


@dataclass(frozen=True)
class Test06Result:
    first_token: bool | None    # None: skipped (Offline)
    eos: bool
    sample_length: bool
    notes: tuple[str, ...]      # the script's "Unexpected error ..." lines, printed before the result

    @property
    def passed(self) -> bool:
        return self.eos and self.sample_length and self.first_token is not False

    def text(self) -> str:
        """verify_accuracy.txt, line for line as run_verification.py writes it."""
        first = "Skipped" if self.first_token is None else str(self.first_token)
        return (f"First token check pass: {first}\nEOS check pass: {self.eos}\n"
                f"Sample length check pass: {self.sample_length}\n"
                f"TEST06 verification {'complete' if self.passed else 'failed'}\n")


def _tokens(hex_text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_text), dtype=TOKEN_DTYPE)


def eos_ok(samples: list[dict], eos_token_id: int) -> bool:
    """No output ends with two or more EOS tokens. Like the reference, index 0 is never looked at."""
    for sample in samples:
        data = _tokens(sample["data"])
        trailing = 0
        for i in range(len(data) - 1, 0, -1):
            if data[i] != eos_token_id:
                break
            trailing += 1
            if trailing >= 2:
                return False
    return True


def first_token_ok(samples: list[dict]) -> bool:
    """The first token reported early (token_data) is the output's first token, for every sample."""
    for sample in samples:
        pairs = zip(_tokens(sample["data"]), _tokens(sample["token_data"]))
        if any(a != b for a, b in pairs):
            return False
    return True


def length_ok(samples: list[dict]) -> bool:
    """The token count told to LoadGen equals the output's length, for every sample."""
    return all(len(_tokens(s["data"])) == int(s["token_count"]) for s in samples)


def verify(accuracy_log: Path, scenario: str, eos_token_id: int) -> Test06Result:
    """The three criteria over one compliance run's mlperf_log_accuracy.json."""
    samples = json.loads(Path(accuracy_log).read_text(encoding="utf-8"))
    notes = []
    try:
        eos = eos_ok(samples, eos_token_id)
    except Exception:  # noqa: BLE001 - the reference counts any error in this check as a failure, and says so
        notes.append("Unexpected error occured while doing the EOS check")
        eos = False
    first: bool | None = None
    if scenario != "Offline":
        try:
            first = first_token_ok(samples)
        except Exception:  # noqa: BLE001 - as above (a log without token_data fails here)
            notes.append("Unexpected error occured while doing the first token check")
            first = False
    try:
        length = length_ok(samples)
    except (KeyError, ValueError, TypeError):   # the reference would stop with a traceback; we record a failure
        notes.append("Unexpected error occured while doing the sample length check")
        length = False
    return Test06Result(first, eos, length, tuple(notes))


def write_verification(compliance_dir: Path, out_dir: Path, scenario: str, eos_token_id: int) -> Test06Result:
    """Verify <compliance_dir>/mlperf_log_accuracy.json and write <out_dir>/TEST06/ as run_verification.py does."""
    log = Path(compliance_dir) / ACCURACY_LOG
    result = verify(log, scenario, eos_token_id)
    target = Path(out_dir) / TEST
    (target / "accuracy").mkdir(parents=True, exist_ok=True)
    (target / VERIFY_FILE).write_text(result.text(), encoding="utf-8")
    shutil.copy2(log, target / "accuracy" / ACCURACY_LOG)
    return result


def read_verification(path: Path) -> dict[str, bool]:
    """What a verify_accuracy.txt says, read as the submission checker does (compliance_check.py: exact lines)."""
    return read_verification_text(Path(path).read_text(encoding="utf-8"))


def read_verification_text(text: str) -> dict[str, bool]:
    lines = {line.strip() for line in text.splitlines()}
    return {"first_token": bool({"First token check pass: True", "First token check pass: Skipped"} & lines),
            "eos": "EOS check pass: True" in lines,
            "sample_length": "Sample length check pass: True" in lines}
