"""Score an accuracy-mode run the way MLCommons' llama3.1-8b evaluation.py does, and judge it against the targets.

evaluation.py: read mlperf_log_accuracy.json, keep the first entry of each qsl_idx, decode each entry's hex `data`
as an int array, detokenize with the model's tokenizer (skip_special_tokens=True), strip, put each nltk sentence
on its own line (predictions and references alike), score every pair with Google rouge-score (use_stemmer=True),
report each mean x 100 rounded to 4 places, gen_len (characters of the processed predictions) and gen_num.
The ROUGE arithmetic lives in include.scoring.rouge (same numbers, faster).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from include.mlperf_rules import ACCURACY_TARGETS, GEN_LEN_RANGE, ROUGE_FRACTION
from include.records import AccuracyResult
from include.results import loadgen_logs, run_artifacts
from include.scoring import rouge
from include.scoring.nltk_data import ensure_punkt_tab

ACCURACY_LOG = "mlperf_log_accuracy.json"
ACCURACY_TXT = "accuracy.txt"       # MLPerf's accuracy result beside the accuracy log (submission layout)
# The SUT's contract (result.schema.json: generation.token_dtype is const "int32"); evaluation.py's --dtype int32.
TOKEN_DTYPE = np.int32


# MLPerf's targets (mlperf_rules); the names stay here for the callers that read them from this module.
TARGETS = ACCURACY_TARGETS


class AccuracyLogError(ValueError):
    """An accuracy log or data set that cannot be scored; the message names the file and what is wrong."""


def read_accuracy_log(path: Path, dtype: type[np.integer] = TOKEN_DTYPE) -> dict[int, np.ndarray]:
    """Output token ids by qsl_idx, first entry of each qsl_idx kept (LoadGen may log a sample more than once).

    A log that is not complete JSON is refused, never partly scored: submission tooling shortens these files.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccuracyLogError(f"{path}: no accuracy log (the run wrote no {ACCURACY_LOG})") from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as e:
        raise AccuracyLogError(
            f"{path}: not complete JSON ({e.msg}: line {e.lineno} column {e.colno}); the log is truncated or"
            " damaged (submission tooling shortens accuracy logs), so it cannot be scored") from None
    if not isinstance(entries, list):
        raise AccuracyLogError(f"{path}: expected a JSON list of LoadGen responses, got {type(entries).__name__}")
    if not entries:
        raise AccuracyLogError(f"{path}: holds no responses (a performance-mode log is empty; score accuracy mode)")
    tokens: dict[int, np.ndarray] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("qsl_idx"), int) or "data" not in entry:
            raise AccuracyLogError(f"{path}: entry [{position}] lacks an integer 'qsl_idx' or 'data'")
        if entry["qsl_idx"] in tokens:
            continue
        try:
            raw = bytes.fromhex(entry["data"])
        except (TypeError, ValueError):
            raise AccuracyLogError(f"{path}: entry [{position}].data is not hex") from None
        if len(raw) % np.dtype(dtype).itemsize:
            raise AccuracyLogError(f"{path}: entry [{position}].data has {len(raw)} bytes, not a whole number of"
                                   f" {np.dtype(dtype).name} token ids")
        tokens[entry["qsl_idx"]] = np.frombuffer(raw, dtype)
    return tokens


def load_references(dataset_path: Path) -> list[str]:
    """The reference summaries (`output`) of cnn_eval.json, indexed by qsl_idx."""
    try:
        samples = json.loads(Path(dataset_path).read_text(encoding="utf-8"))
        return [sample["output"] for sample in samples]
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as e:
        message = f"{dataset_path}: not a cnn_eval.json data set with an 'output' per sample ({e})"
    raise AccuracyLogError(message)


def detokenize(model_dir: Path, token_ids: Sequence[np.ndarray]) -> list[str]:
    """Decode with the model's own tokenizer, special tokens dropped, as evaluation.py does."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return tokenizer.batch_decode([ids.tolist() for ids in token_ids], skip_special_tokens=True)


def postprocess_text(texts: Sequence[str]) -> list[str]:
    """evaluation.py's postprocess_text for one side: strip, then one nltk sentence per line (rougeLsum needs it)."""
    ensure_punkt_tab()
    import nltk

    return ["\n".join(nltk.sent_tokenize(text.strip())) for text in texts]


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float | int]:
    """evaluation.py's result dict from processed texts: mean ROUGE x 100 (4 places), gen_len, gen_num."""
    per_pair = rouge.score_many(references, predictions)
    # numpy's rounding of the float64 mean, as evaluation.py's round(np.mean(v) * 100, 4)
    result: dict[str, float | int] = {t: float(round(np.mean(per_pair[t]) * 100, 4)) for t in rouge.ROUGE_TYPES}
    result["gen_len"] = sum(len(p) for p in predictions)
    result["gen_num"] = len(predictions)
    return result


def judge(scores: dict[str, float | int], dataset_size: int, accuracy_meaningful: bool = True) -> AccuracyResult:
    """Compare with the datacenter or edge targets, only where they apply.

    The targets describe the whole data set (datacenter or edge, mlperf_rules.ACCURACY_TARGETS); a subset's ROUGE is
    a different quantity, and random weights give ROUGE that means nothing.
    """
    gen_num = int(scores["gen_num"])
    target_set = next((name for name, t in TARGETS.items() if gen_num == t.gen_num == dataset_size), None)
    common = dict(rouge1=scores["rouge1"], rouge2=scores["rouge2"], rougeL=scores["rougeL"],
                  rougeLsum=scores["rougeLsum"], gen_len=int(scores["gen_len"]), gen_num=gen_num,
                  full_dataset=target_set is not None)
    if not accuracy_meaningful:
        return AccuracyResult(**common, target_set=None, passed=None,
                              verdict="not judged: the model ran with dummy (random) weights, whose ROUGE means"
                                      " nothing")
    if target_set is None:
        sizes = " or ".join(f"{t.gen_num:,} ({name})" for name, t in TARGETS.items())
        return AccuracyResult(**common, target_set=None, passed=None,
                              verdict=f"targets not applicable: {gen_num:,} of {dataset_size:,} samples scored;"
                                      f" targets need the full data set of {sizes} samples")
    targets = TARGETS[target_set]
    failures = []
    for rouge_type in rouge.ROUGE_TYPES:
        floor = ROUGE_FRACTION * getattr(targets, rouge_type)
        if scores[rouge_type] < floor:
            failures.append(f"{rouge_type} {scores[rouge_type]} below {floor:.4f}"
                            f" (99% of {getattr(targets, rouge_type)})")
    low, high = (f * targets.gen_len for f in GEN_LEN_RANGE)
    if not low <= common["gen_len"] <= high:
        failures.append(f"gen_len {common['gen_len']:,} outside {low:,.0f}-{high:,.0f}"
                        f" (90-110% of {targets.gen_len:,})")
    verdict = (f"meets the {target_set} accuracy targets" if not failures
               else f"misses the {target_set} accuracy targets: " + "; ".join(failures))
    return AccuracyResult(**common, target_set=target_set, passed=not failures, verdict=verdict, failures=failures)


def score_accuracy_log(log_path: Path, model_dir: Path, dataset_path: Path,
                       accuracy_meaningful: bool = True) -> AccuracyResult:
    """evaluation.py on one accuracy log, then the verdict."""
    return _score_tokens(read_accuracy_log(Path(log_path)), Path(log_path), model_dir, dataset_path,
                         accuracy_meaningful)


def _score_tokens(tokens: dict[int, np.ndarray], log_path: Path, model_dir: Path, dataset_path: Path,
                  accuracy_meaningful: bool) -> AccuracyResult:
    references = load_references(Path(dataset_path))
    outside = [idx for idx in tokens if not 0 <= idx < len(references)]
    if outside:
        raise AccuracyLogError(f"{log_path}: qsl_idx {outside[0]} is outside the {len(references):,} samples of"
                               f" {dataset_path} (a different data set?)")
    predictions = postprocess_text(detokenize(Path(model_dir), list(tokens.values())))
    targets = postprocess_text([references[idx] for idx in tokens])
    return judge(rouge_scores(predictions, targets), len(references), accuracy_meaningful)


def score_run(run_dir: Path, model_dir: Path, dataset_path: Path) -> AccuracyResult:
    """Score an accuracy-mode run directory (its accuracy log, judged by what its result.json says)."""
    run_dir = Path(run_dir)
    log_path = run_dir / ACCURACY_LOG
    tokens = read_accuracy_log(log_path)   # a truncated or empty log is refused before anything else
    result = run_artifacts.load_result(run_dir)
    if result["mode"] != "accuracy":
        raise AccuracyLogError(f"{run_dir / run_artifacts.RESULT_FILE}: mode is {result['mode']!r}; only accuracy-mode"
                               " runs log every response")
    return _score_tokens(tokens, log_path, model_dir, dataset_path, result["accuracy_meaningful"])


# --- accuracy.txt: MLPerf's accuracy result file ----------------------------------------------------------------
# evaluation.py prints "\nResults\n\n" and its result dict, ROUGE as strings of the 4-place rounded mean x 100 and
# gen_len / gen_num as integers; submission tooling (truncate_accuracy_log.py) appends "\nhash=<sha256 of
# mlperf_log_accuracy.json>\n". The submission checker reads each metric with a regex per line
# (".*'rouge1':\\s+'?([\\d.]+)'?.*", ".*'gen_len':\\s([\\d.]+).*") and requires "hash=". With numpy 2,
# evaluation.py prints gen_len as np.int64(8163079) and ROUGE values may come as np.float64(...): read those too.
ACCURACY_TXT_KEYS = (*rouge.ROUGE_TYPES, "gen_len", "gen_num")
_TXT_VALUE = re.compile(r"""['"](?P<key>\w+)['"]\s*:\s*(?:np\.\w+\(|numpy\.\w+\()?\s*['"]?"""
                        r"""(?P<value>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)['"]?\s*\)?""")
_TXT_HASH = re.compile(r"^hash=(\w+)$", re.MULTILINE)


@dataclass(frozen=True)
class AccuracyTxt:
    """What an accuracy.txt says: the scores as numbers, and the accuracy log's hash where tooling added it."""

    scores: dict[str, float | int]   # rouge1, rouge2, rougeL, rougeLsum (x 100), gen_len, gen_num
    log_sha256: str | None


def parse_accuracy_txt(path: Path) -> AccuracyTxt:
    """The scores of an MLPerf accuracy.txt as numbers (never eval'd); AccuracyLogError names what is missing."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccuracyLogError(f"{path}: missing (score the accuracy run, or copy evaluation.py's output there)") \
            from None
    except UnicodeDecodeError as e:
        raise AccuracyLogError(f"{path}: not text ({e.reason} at byte {e.start})") from None
    line = next((line for line in text.splitlines() if "rouge1" in line), None)
    if line is None:
        raise AccuracyLogError(f"{path}: no line with the result dict ('rouge1': ...); not evaluation.py's output")
    values = {m["key"]: m["value"] for m in _TXT_VALUE.finditer(line) if m["key"] in ACCURACY_TXT_KEYS}
    missing = [key for key in ACCURACY_TXT_KEYS if key not in values]
    if missing:
        raise AccuracyLogError(f"{path}: the result dict has no number for {', '.join(missing)}")
    scores: dict[str, float | int] = {key: float(values[key]) for key in rouge.ROUGE_TYPES}
    for key in ("gen_len", "gen_num"):
        number = float(values[key])
        if not number.is_integer():
            raise AccuracyLogError(f"{path}: {key} is {values[key]}, not a whole number")
        scores[key] = int(number)
    found = _TXT_HASH.search(text)
    return AccuracyTxt(scores, found.group(1) if found else None)


def read_accuracy_txt(path: Path, dataset_size: int | None = None, accuracy_meaningful: bool = True) -> AccuracyResult:
    """An accuracy.txt judged like our own scores.

    `dataset_size`: the samples of the data set the run drew from. Without it, LoadGen's qsl_reported_total_count
    from the accuracy-mode detail log beside the file (MLPerf's layout), else the scored samples (gen_num).
    """
    path = Path(path)
    scores = parse_accuracy_txt(path).scores
    if dataset_size is None:
        try:
            detail = loadgen_logs.read_detail(path.parent / loadgen_logs.DETAIL_LOG)
            dataset_size = next((int(r["value"]) for r in detail if r["key"] == loadgen_logs.QSL_TOTAL_COUNT_KEY), None)
        except (loadgen_logs.LoadGenLogError, TypeError, ValueError):
            dataset_size = None
    return judge(scores, int(dataset_size or scores["gen_num"]), accuracy_meaningful)


def file_sha256(path: Path) -> str:
    """sha256 of a file, as MLPerf's truncate_accuracy_log.py writes it into accuracy.txt."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def format_accuracy_txt(result: AccuracyResult, log_sha256: str | None = None) -> str:
    """accuracy.txt's text in MLPerf's format: evaluation.py's printout, then the hash line of the tooling."""
    scores: dict[str, str | int] = {key: str(float(getattr(result, key))) for key in rouge.ROUGE_TYPES}
    scores["gen_len"], scores["gen_num"] = int(result.gen_len), int(result.gen_num)
    text = f"\nResults\n\n{scores!r}\n"
    return text + (f"\nhash={log_sha256}\n" if log_sha256 else "")


def write_accuracy_txt(run_dir: Path, result: AccuracyResult) -> Path:
    """Write <run_dir>/accuracy.txt for a scored accuracy run, with the hash of its mlperf_log_accuracy.json (the
    submission checker requires one); returns the path."""
    run_dir = Path(run_dir)
    log = run_dir / ACCURACY_LOG
    path = run_dir / ACCURACY_TXT
    path.write_text(format_accuracy_txt(result, file_sha256(log) if log.is_file() else None), encoding="utf-8")
    return path
