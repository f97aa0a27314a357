"""include.scoring.accuracy and include.scoring.rouge: the same numbers as MLCommons' evaluation.py, and honest
verdicts."""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer

from include.scoring import accuracy, rouge
from include.scoring.accuracy import ACCURACY_LOG, AccuracyLogError
from include.scoring.nltk_data import ensure_punkt_tab, write_punkt_tab

# News-like sentences with the things that trip tokenisers: numbers, currency, abbreviations, quotes, hyphens,
# apostrophes, non-ASCII letters (some lowercase to ASCII: the Kelvin sign, dotted capital I), dashes and emoji.
SENTENCES = [
    "Police said the 23-year-old man was arrested on Tuesday in Manchester.",
    "The U.S. economy added 223,000 jobs in June, the Labor Department said.",
    "Mr. Obama's approval rating fell to 41% after the vote.",
    "\"We are devastated,\" said the family in a statement released by the FBI.",
    "The café in Zürich, owned by José Muñoz, reopened after 3 months.",
    "Shares of Apple Inc. rose 2.5 percent to $126.60 on Wall Street.",
    "İstanbul's mayor promised 1,000 new buses by 2016 — twice the earlier plan.",
    "The temperature fell to 250 \u212a overnight, scientists reported.",
    "She won't run again, her spokesman told CNN on Friday night.",
    "Officials evacuated 12,500 residents as the wildfire spread rapidly.",
    "The naïve plan was abandoned; critics called it 'reckless' and 'unworkable'.",
    "Manchester United beat Chelsea 3-1 at Old Trafford on Sunday.",
    "Researchers found that running 30 minutes a day reduces the risk by 25%.",
    "The company's chief executive resigned amid the accounting scandal.",
    "Москва denied the report, calling it \"absurd\" 🙂 and baseless.",
    "Flights were cancelled at J.F.K. and LaGuardia airports due to the storm.",
    "The jury deliberated for 11 hours before reaching a verdict.",
    "Hospitals in the region treated 47 people for smoke inhalation.",
    "Prices rose by 0.3 per cent in March, the Office for National Statistics said.",
    "He was sentenced to 15 years in prison for the 2012 killings.",
    "The rescuers, working through the night, pulled three survivors from the rubble.",
    "Dr. Smith told reporters the patient's condition was stable but critical.",
    "A spokeswoman for the ministry declined to comment on the allegations.",
    "The bill passed 68-32 in the Senate and now heads to the House.",
]


def _perturb(rng: random.Random, sentence: str) -> str:
    words = [w for w in sentence.split() if rng.random() < 0.85]
    words = [rng.choice(["the", "said", "police", "officials", "2015", "runs"]) if rng.random() < 0.15 else w
             for w in words]
    if len(words) > 3 and rng.random() < 0.3:
        cut = rng.randrange(1, len(words))
        words = words[cut:] + words[:cut]
    return " ".join(words)


def _pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    references, predictions = [], []
    for _ in range(n):
        reference = rng.sample(SENTENCES, rng.randint(1, 4))
        prediction = [_perturb(rng, s) for s in reference if rng.random() < 0.8]
        prediction += rng.sample(SENTENCES, rng.randint(0, 2))
        rng.shuffle(prediction)
        references.append(" ".join(reference))
        predictions.append(" ".join(prediction))
    predictions[:6] = ["", "   ", "...", "2015 2015 2015", "Summary:", "\n"]   # empty and degenerate outputs
    references[6] = "!!!"
    return references, predictions


def _reference_postprocess(texts: list[str]) -> list[str]:
    """evaluation.py's postprocess_text, verbatim in substance, to check ours against."""
    ensure_punkt_tab()
    import nltk

    return ["\n".join(nltk.sent_tokenize(text.strip())) for text in texts]


def test_fast_rouge_equals_rouge_score() -> None:
    references, predictions = _pairs(400, seed=1)
    assert accuracy.postprocess_text(predictions) == _reference_postprocess(predictions)
    references, predictions = _reference_postprocess(references), _reference_postprocess(predictions)
    expected = rouge.reference_score_many(references, predictions)
    got = rouge.score_many(references, predictions, processes=1)
    for rouge_type in rouge.ROUGE_TYPES:
        diffs = [abs(a - b) for a, b in zip(expected[rouge_type], got[rouge_type], strict=True)]
        assert max(diffs) <= 1e-9, (rouge_type, max(diffs))
    assert 0.2 < np.mean(got["rougeLsum"]) < 0.9   # realistic overlap, not all zeros or ones


def test_process_pool_gives_the_same_scores() -> None:
    references, predictions = _pairs(2500, seed=2)
    assert rouge.score_many(references, predictions, processes=2) == rouge.score_many(references, predictions,
                                                                                      processes=1)


def test_lcs_backtrack_matches_rouge_score() -> None:
    """Which LCS is picked decides rougeLsum's hits: tie-breaking must match rouge-score's exactly."""
    rng = random.Random(3)
    for _ in range(3000):
        ref = [rng.choice("abcde") for _ in range(rng.randint(1, 25))]
        can = [rng.choice("abcde") for _ in range(rng.randint(1, 25))]
        got = rouge._lcs_indices(ref, can, rouge._positions(can))
        assert sorted(got) == rouge_scorer.lcs_ind(ref, can), (ref, can)


def test_tokenize_matches_rouge_score() -> None:
    tokenizer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)._tokenizer
    for text in SENTENCES + ["", "   ", "generously happiness relational ponies caresses"]:
        assert rouge.tokenize(text) == tokenizer.tokenize(text)


def test_punkt_tab_written_offline(tmp_path: Path) -> None:
    lang_dir = write_punkt_tab(tmp_path)
    assert lang_dir == tmp_path / "tokenizers" / "punkt_tab" / "english"
    assert "mr" in (lang_dir / "abbrev_types.txt").read_text().splitlines()
    ensure_punkt_tab(tmp_path)
    import nltk

    assert nltk.sent_tokenize("Mr. Smith paid $3.50 in the U.S. on Jan. 5. He left!") == [
        "Mr. Smith paid $3.50 in the U.S. on Jan. 5.", "He left!"]


def test_read_accuracy_log_dedups_by_qsl_idx(sut_runs: dict, tmp_path: Path) -> None:
    log = sut_runs[("Offline", "accuracy")] / ACCURACY_LOG
    entries = json.loads(log.read_text())
    first = entries[0]
    duplicate = dict(first, data=np.array([1, 2, 3], np.int32).tobytes().hex().upper())
    (tmp_path / ACCURACY_LOG).write_text(json.dumps(entries + [duplicate]))
    tokens = accuracy.read_accuracy_log(tmp_path / ACCURACY_LOG)
    assert len(tokens) == len({e["qsl_idx"] for e in entries}) == 16
    assert tokens[first["qsl_idx"]].tolist() == np.frombuffer(bytes.fromhex(first["data"]), np.int32).tolist()
    assert all(tokens[idx].dtype == np.int32 and 1 <= len(tokens[idx]) <= 128 for idx in tokens)


def test_truncated_published_log_is_refused(published_fixtures: Path, tiny_model_dir: Path,
                                            tiny_dataset: Path) -> None:
    run = published_fixtures / "Offline" / "accuracy"
    with pytest.raises(AccuracyLogError, match=rf"{ACCURACY_LOG}: not complete JSON .* truncated"):
        accuracy.score_run(run, tiny_model_dir, tiny_dataset)
    with pytest.raises(AccuracyLogError, match=rf"{ACCURACY_LOG}: not complete JSON"):
        accuracy.read_accuracy_log(published_fixtures / "Server" / "accuracy" / ACCURACY_LOG)


def test_performance_log_is_refused(published_fixtures: Path) -> None:
    with pytest.raises(AccuracyLogError, match=rf"{ACCURACY_LOG}: holds no responses"):
        accuracy.read_accuracy_log(published_fixtures / "Offline" / "performance" / "run_1" / ACCURACY_LOG)


def _set_meaningful(run: Path, meaningful: bool) -> None:
    result = json.loads((run / "result.json").read_text())
    result["accuracy_meaningful"] = meaningful
    (run / "result.json").write_text(json.dumps(result))


def test_score_run_equals_evaluation_py(sut_runs: dict, tiny_model_dir: Path, tiny_dataset: Path,
                                        tmp_path: Path) -> None:
    run = shutil.copytree(sut_runs[("Offline", "accuracy")], tmp_path / "run")
    _set_meaningful(run, True)
    result = accuracy.score_run(run, tiny_model_dir, tiny_dataset)

    # evaluation.py, step by step
    from transformers import AutoTokenizer

    entries, seen = [], set()
    for entry in json.loads((run / ACCURACY_LOG).read_text()):
        if entry["qsl_idx"] not in seen:
            seen.add(entry["qsl_idx"])
            entries.append(entry)
    targets = [json.loads(tiny_dataset.read_text())[e["qsl_idx"]]["output"] for e in entries]
    token_ids = [np.frombuffer(bytes.fromhex(e["data"]), np.int32) for e in entries]
    decoded = AutoTokenizer.from_pretrained(str(tiny_model_dir)).batch_decode(token_ids, skip_special_tokens=True)
    preds, targets = _reference_postprocess(decoded), _reference_postprocess(targets)
    scorer = rouge_scorer.RougeScorer(list(rouge.ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(t, p) for t, p in zip(targets, preds)]
    for rouge_type in rouge.ROUGE_TYPES:
        expected = round(np.mean([s[rouge_type].fmeasure for s in scores]) * 100, 4)
        assert getattr(result, rouge_type) == expected, rouge_type
    assert result.gen_len == sum(len(p) for p in preds)
    assert result.gen_num == 16

    assert (result.full_dataset, result.target_set, result.passed) == (False, None, None)
    assert result.verdict.startswith("targets not applicable: 16 of 64 samples")


def test_dummy_weights_are_not_judged(sut_runs: dict, tiny_model_dir: Path, tiny_dataset: Path,
                                      tmp_path: Path) -> None:
    run = shutil.copytree(sut_runs[("Offline", "accuracy")], tmp_path / "run")
    _set_meaningful(run, False)
    result = accuracy.score_run(run, tiny_model_dir, tiny_dataset)
    assert result.passed is None and result.target_set is None
    assert "random" in result.verdict and "means nothing" in result.verdict


# The published submission's scores (shared/fixtures/.../Offline/accuracy/accuracy.txt)
PUBLISHED_OFFLINE = {"rouge1": 38.7898, "rouge2": 15.9437, "rougeL": 24.5735, "rougeLsum": 35.8053,
                     "gen_len": 8_163_079, "gen_num": 13_368}


def test_published_scores_meet_datacenter_targets() -> None:
    result = accuracy.judge(PUBLISHED_OFFLINE, dataset_size=13_368)
    assert (result.full_dataset, result.target_set, result.passed, result.failures) == (True, "datacenter", True, [])
    assert result.verdict == "meets the datacenter accuracy targets"


def test_missed_targets_are_listed() -> None:
    scores = dict(PUBLISHED_OFFLINE, rouge2=15.70, gen_len=7_000_000)   # 99% of 15.9075 is 15.7484
    result = accuracy.judge(scores, dataset_size=13_368)
    assert result.passed is False
    assert [f.split()[0] for f in result.failures] == ["rouge2", "gen_len"]
    assert result.verdict.startswith("misses the datacenter accuracy targets: rouge2 15.7 below 15.7484")


def test_edge_subset_uses_edge_targets() -> None:
    scores = {"rouge1": 39.0, "rouge2": 16.0, "rougeL": 24.6, "rougeLsum": 36.0, "gen_len": 3_050_000,
              "gen_num": 5_000}
    result = accuracy.judge(scores, dataset_size=5_000)
    assert (result.target_set, result.passed) == ("edge", True)


def test_subset_of_full_dataset_is_not_judged() -> None:
    result = accuracy.judge(dict(PUBLISHED_OFFLINE, gen_num=5_000), dataset_size=13_368)
    assert (result.full_dataset, result.passed) == (False, None)
    assert result.verdict.startswith("targets not applicable: 5,000 of 13,368 samples")


# --- issue #12: MLPerf's accuracy.txt read (numbers, never eval'd) and written in MLPerf's format -----------------
# The submission checker's patterns for llama3.1-8b (mlcommons/inference tools/submission/submission_checker/
# constants.py, ACC_PATTERN) and its hash line (checks/accuracy_check.py).
CHECKER_PATTERNS = {"rouge1": r".*'rouge1':\s+'?([\d.]+)'?.*", "rouge2": r".*'rouge2':\s+'?([\d.]+)'?.*",
                    "rougeL": r".*'rougeL':\s+'?([\d.]+)'?.*", "rougeLsum": r".*'rougeLsum':\s+'?([\d.]+)'?.*",
                    "gen_len": r".*'gen_len':\s([\d.]+).*"}
PUBLISHED_SERVER = {"rouge1": 38.7459, "rouge2": 15.756, "rougeL": 24.428, "rougeLsum": 35.7253,
                    "gen_len": 8_127_531, "gen_num": 13_368}


@pytest.mark.parametrize("scenario, expected, digest", [
    ("Offline", PUBLISHED_OFFLINE, "7e1fb5443b0c6fa3c15d2bb34f7f5a1e64edc2b7eb5e4ab0ced51de9c4930c24"),
    ("Server", PUBLISHED_SERVER, "c5d97b024ca71cdb5481696f9cbfcccad6225dab983a22b54bcbecb818db8518"),
])
def test_published_accuracy_txt_is_read_as_numbers(published_fixtures: Path, scenario, expected, digest) -> None:
    parsed = accuracy.parse_accuracy_txt(published_fixtures / scenario / "accuracy" / accuracy.ACCURACY_TXT)
    assert parsed.scores == expected
    assert all(type(parsed.scores[k]) is float for k in rouge.ROUGE_TYPES)
    assert type(parsed.scores["gen_len"]) is int and type(parsed.scores["gen_num"]) is int
    assert parsed.log_sha256 == digest
    result = accuracy.read_accuracy_txt(published_fixtures / scenario / "accuracy" / accuracy.ACCURACY_TXT,
                                        dataset_size=13_368)
    assert (result.target_set, result.passed, result.rougeL) == ("datacenter", True, expected["rougeL"])


def test_numpy_2_wrappers_are_read(tmp_path: Path) -> None:
    # evaluation.py under numpy 2 prints np.int64(...) for gen_len (the checker's own GEN_LEN pattern misses it)
    path = tmp_path / "accuracy.txt"
    path.write_text("INFO:absl:Using default tokenizer.\n\nResults\n\n{'rouge1': np.float64(38.7898), 'rouge2': "
                    "'15.9437', 'rougeL': np.str_('24.5735'), 'rougeLsum': '35.8053', 'gen_len': np.int64(8163079),"
                    " 'gen_num': 13368}\n")
    parsed = accuracy.parse_accuracy_txt(path)
    assert parsed.scores == PUBLISHED_OFFLINE and parsed.log_sha256 is None


@pytest.mark.parametrize("text, message", [
    ("Results\n\n{'rouge1': '38.7', 'rouge2': '15.9', 'rougeL': '24.5', 'rougeLsum': '35.8', 'gen_num': 13368}\n",
     "no number for gen_len"),
    ("Results\n\n{'rouge1': '38.7', 'rouge2': 'n/a', 'rougeL': '24.5', 'rougeLsum': '35.8', 'gen_len': 1,"
     " 'gen_num': 1}\n", "no number for rouge2"),
    ("Results\n\n{'rouge1': '38.7', 'rouge2': '1', 'rougeL': '24.5', 'rougeLsum': '35.8', 'gen_len': 1.5,"
     " 'gen_num': 1}\n", "gen_len is 1.5, not a whole number"),
    ("hash=abc\n", "no line with the result dict"),
])
def test_broken_accuracy_txt_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accuracy.txt"
    path.write_text(text)
    with pytest.raises(AccuracyLogError, match=message):
        accuracy.parse_accuracy_txt(path)
    with pytest.raises(AccuracyLogError, match="missing"):
        accuracy.parse_accuracy_txt(tmp_path / "absent.txt")


def test_written_accuracy_txt_is_mlperfs_format_and_round_trips(published_fixtures: Path, tmp_path: Path) -> None:
    result = accuracy.judge(PUBLISHED_OFFLINE, dataset_size=13_368)
    (tmp_path / ACCURACY_LOG).write_bytes(b'[{"seq_id": 0, "qsl_idx": 0, "data": "01000000"}]')
    path = accuracy.write_accuracy_txt(tmp_path, result)
    assert path == tmp_path / "accuracy.txt"
    text = path.read_text()
    # evaluation.py's dict line, character for character as in the published submission's accuracy.txt
    published = (published_fixtures / "Offline" / "accuracy" / "accuracy.txt").read_text().splitlines()
    dict_line = next(line for line in published if "rouge1" in line)
    assert dict_line in text.splitlines()
    # what the submission checker reads from it
    lines = text.splitlines()
    for key, pattern in CHECKER_PATTERNS.items():
        found = [m.group(1) for m in (re.match(pattern, line) for line in lines) if m]
        assert found and float(found[0]) == PUBLISHED_OFFLINE[key], key
    assert [m.group(1) for m in (re.match(r"^hash=([\w\d]+)$", line) for line in lines) if m] == [
        hashlib.sha256((tmp_path / ACCURACY_LOG).read_bytes()).hexdigest()]
    # and back
    parsed = accuracy.parse_accuracy_txt(path)
    assert parsed.scores == PUBLISHED_OFFLINE
    again = accuracy.read_accuracy_txt(path, dataset_size=13_368)
    assert again == result


def test_accuracy_txt_is_judged_against_the_data_set_loadgen_reported(published_fixtures: Path,
                                                                    tmp_path: Path) -> None:
    # without dataset_size: LoadGen's qsl_reported_total_count of the accuracy run beside accuracy.txt
    result = accuracy.read_accuracy_txt(published_fixtures / "Offline" / "accuracy" / accuracy.ACCURACY_TXT)
    assert (result.full_dataset, result.target_set, result.passed) == (True, "datacenter", True)
    run = tmp_path / "accuracy"
    run.mkdir()
    shutil.copy(published_fixtures / "Offline" / "accuracy" / accuracy.ACCURACY_TXT, run)
    detail = (published_fixtures / "Offline" / "accuracy" / "mlperf_log_detail.txt").read_text()
    old = '"key": "qsl_reported_total_count", "value": 13368'
    assert old in detail
    (run / "mlperf_log_detail.txt").write_text(detail.replace(old, old.replace("13368", "20000")))
    result = accuracy.read_accuracy_txt(run / accuracy.ACCURACY_TXT)
    assert (result.full_dataset, result.passed) == (False, None)
    assert result.verdict.startswith("targets not applicable: 13,368 of 20,000 samples")
