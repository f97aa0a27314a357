"""ROUGE exactly as MLCommons' evaluation.py gets it, about 10x faster.

The reference scores every (reference, prediction) pair with Google's `rouge-score` (RougeScorer with
use_stemmer=True, through `evaluate`'s "rouge" metric) and keeps each type's f-measure. Scoring the full data set
that way takes most of a minute on one core, mostly in the Porter stemmer (four tokenisations per pair) and in
pure-Python LCS tables. This module computes the same numbers (the test proves equality to 1e-9) by:

- tokenising each text once, with rouge-score's rules, and caching each word's stem (the stemmer is deterministic);
- counting n-gram overlaps with Counters and rougeL's LCS length with rapidfuzz (the length is unique);
- for rougeLsum, keeping each LCS table's rows as bit vectors (Hyyro's bit-parallel LCS) and walking back through
  them with rouge-score's own tie-breaking, because *which* LCS is chosen changes the union-LCS hit count;
- optionally, splitting large inputs over a process pool.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from nltk.stem import porter
from rapidfuzz.distance import LCSseq

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# Below this many pairs a process pool costs more than it saves.
_POOL_MIN_PAIRS = 2000

# rouge_score.tokenize: lowercase, every run of characters outside [a-z0-9] becomes a space, split, stem words longer
# than 3 characters with nltk's PorterStemmer in its default (NLTK_EXTENSIONS) mode, drop tokens not [a-z0-9]+.
_WORD_RE = re.compile(r"[a-z0-9]+")   # the words left between the runs rouge-score blanks out
_VALID_TOKEN_RE = re.compile(r"^[a-z0-9]+$")
_stemmer = porter.PorterStemmer()
_stems: dict[str, str | None] = {}   # word -> its token, or None when rouge-score drops it


def _stem(word: str) -> str | None:
    token = _stemmer.stem(word) if len(word) > 3 else word
    token = token if _VALID_TOKEN_RE.match(token) else None
    _stems[word] = token
    return token


def tokenize(text: str) -> list[str]:
    """rouge_score.tokenize.tokenize(text, PorterStemmer()) with a stem cache."""
    words = _WORD_RE.findall(text.lower())
    stems = _stems
    tokens = [stems[word] if word in stems else _stem(word) for word in words]
    return [token for token in tokens if token is not None] if None in tokens else tokens


def _sentences(text: str) -> list[list[str]]:
    """Tokens of each non-empty line: rougeLsum's sentences (evaluation.py puts one sentence per line).

    Newlines are separators for the other types too, so the whole text's tokens are these lists concatenated.
    """
    return [tokenize(line) for line in text.split("\n") if line]


def _fmeasure(precision: float, recall: float) -> float:
    # rouge_score.scoring.fmeasure, operation for operation so the floats are identical
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _ngram_f(target: Sequence, prediction: Sequence) -> float:
    target_counts = collections.Counter(target)
    prediction_counts = collections.Counter(prediction)
    overlap = sum(min(target_counts[gram], prediction_counts[gram])
                  for gram in target_counts.keys() & prediction_counts.keys())
    precision = overlap / max(len(prediction), 1)
    recall = overlap / max(len(target), 1)
    return _fmeasure(precision, recall)


def _lcs_f(target: list[str], prediction: list[str]) -> float:
    if not target or not prediction:
        return 0
    lcs = LCSseq.similarity(target, prediction)
    return _fmeasure(lcs / len(prediction), lcs / len(target))


def _positions(seq: list[str]) -> dict[str, int]:
    """token -> bit mask of its positions in `seq`."""
    match: dict[str, int] = {}
    for k, token in enumerate(seq):
        match[token] = match.get(token, 0) | (1 << k)
    return match


def _lcs_indices(ref: list[str], can: list[str], can_positions: dict[str, int]) -> list[int]:
    """rouge_score.lcs_ind(ref, can): indices into `ref` of the LCS its `_backtrack_norec` picks.

    rouge-score fills table[i][j] = LCS(ref[:i], can[:j]) and walks back from the corner: diagonal on a match, else
    left when table[i][j-1] > table[i-1][j], else up. Here row i of the table is bit vector rows[i] (Hyyro's
    bit-parallel LCS), whose bit j-1 is clear exactly where table[i][j] = table[i][j-1] + 1, so any
    table[i][j] = j - popcount(rows[i] & (2**j - 1)). On the walk table[i][j] equals the matches still to find and
    both neighbours are that or one less, so "left wins" means: the row does not grow into j, and the cell above is
    one less. The walk stops once every LCS token is found.
    """
    n = len(can)
    full = (1 << n) - 1
    v = full
    rows = [v]
    get = can_positions.get
    for token in ref:
        u = v & get(token, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    remaining = n - v.bit_count()
    i, j = len(ref), n
    indices = []
    while remaining:
        if ref[i - 1] == can[j - 1]:
            indices.append(i - 1)
            i -= 1
            j -= 1
            remaining -= 1
        elif rows[i] >> (j - 1) & 1 and (rows[i - 1] & ((1 << j) - 1)).bit_count() == j - remaining + 1:
            j -= 1
        else:
            i -= 1
    return indices


def _summary_lcs_f(target_sents: list[list[str]], prediction_sents: list[list[str]]) -> float:
    """rouge_score._summary_level_lcs: union LCS per reference sentence, each token counted at most once."""
    m = sum(map(len, target_sents))
    n = sum(map(len, prediction_sents))
    if not m or not n:
        return 0
    target_counts = collections.Counter(t for sent in target_sents for t in sent)
    prediction_counts = collections.Counter(t for sent in prediction_sents for t in sent)
    candidates = [(can, _positions(can)) for can in prediction_sents if can]
    hits = 0
    for ref in target_sents:
        union: set[int] = set()
        if ref:
            for can, can_positions in candidates:
                union.update(_lcs_indices(ref, can, can_positions))
        for i in sorted(union):
            token = ref[i]
            if prediction_counts[token] > 0 and target_counts[token] > 0:
                hits += 1
                prediction_counts[token] -= 1
                target_counts[token] -= 1
    return _fmeasure(hits / n, hits / m)


def score(target: str, prediction: str) -> dict[str, float]:
    """F-measures of one pair, equal to RougeScorer(ROUGE_TYPES, use_stemmer=True).score(target, prediction)."""
    target_sents = _sentences(target)
    prediction_sents = _sentences(prediction)
    target_tokens = [t for sent in target_sents for t in sent]
    prediction_tokens = [t for sent in prediction_sents for t in sent]
    return {
        "rouge1": _ngram_f(target_tokens, prediction_tokens),
        "rouge2": _ngram_f(list(zip(target_tokens, target_tokens[1:])),
                           list(zip(prediction_tokens, prediction_tokens[1:]))),
        "rougeL": _lcs_f(target_tokens, prediction_tokens),
        "rougeLsum": _summary_lcs_f(target_sents, prediction_sents),
    }


def _score_chunk(pairs: list[tuple[str, str]]) -> list[dict[str, float]]:
    return [score(target, prediction) for target, prediction in pairs]


def score_many(targets: Sequence[str], predictions: Sequence[str], processes: int = 1) -> dict[str, list[float]]:
    """Per-pair f-measures by type, as `evaluate`'s rouge metric returns them with use_aggregator=False.

    One process by default: the full data set takes ~2.4 s, and on the shared 2-core machine a pool of 2 was slower
    (3.2-3.7 s) because the cores were already busy. Pass `processes` where cores are free; inputs too small to repay
    the pool stay in this process.
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} references but {len(predictions)} predictions")
    pairs = list(zip(targets, predictions))
    workers = min(processes, len(os.sched_getaffinity(0)))
    # a daemonic process (some executors' workers) may not start children
    if workers > 1 and len(pairs) >= _POOL_MIN_PAIRS and not multiprocessing.current_process().daemon:
        size = -(-len(pairs) // (workers * 4))
        chunks = [pairs[k:k + size] for k in range(0, len(pairs), size)]
        # fork: children inherit the imported stemmer and its cache instead of importing nltk again
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            scores = [s for chunk in pool.map(_score_chunk, chunks) for s in chunk]
    else:
        scores = _score_chunk(pairs)
    return {rouge_type: [s[rouge_type] for s in scores] for rouge_type in ROUGE_TYPES}


def reference_score_many(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, list[float]]:
    """The reference method itself: Google rouge-score per pair, as `evaluate.load("rouge")` computes it.

    Kept for the equality test and the speed benchmark; `evaluate` cannot load its metric offline.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(target, prediction) for target, prediction in zip(targets, predictions, strict=True)]
    return {rouge_type: [s[rouge_type].fmeasure for s in scores] for rouge_type in ROUGE_TYPES}
