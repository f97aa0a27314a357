"""Time the reference ROUGE (Google rouge-score per pair, as evaluation.py) against include.scoring.rouge on one input.

As many seeded synthetic pairs as MLPerf's data set has (DATASET_SAMPLES), shaped like CNN/DailyMail highlights and
llama3.1-8b summaries: ~3 sentences of ~20 words each, drawn Zipf-like from an English vocabulary with capitals, numbers, punctuation and some non-ASCII;
each prediction keeps, replaces, drops and reorders words of its reference, so the scores come out near real ones
(here rouge1 ~50, rouge2 ~15; llama3.1-8b's are ~39 and ~16) and the LCS walks are as long as real ones.
The last line is what the Makefile's `bench` target reports:

    rouge_speedup=<reference seconds / our seconds> max_abs_diff=<largest score difference>
"""
from __future__ import annotations

import argparse
import random
import time

from include.mlperf_rules import DATASET_SAMPLES
from include.scoring import rouge
from include.scoring.accuracy import postprocess_text



def _vocabulary(rng: random.Random) -> list[str]:
    from punkt.data import english   # ~20k words seen in the English punkt training corpus

    common = ("the of and to a in for is on that by with he was as at said from it his has have are be an who "
              "had were but they not after their been its this police year years people two new one told").split()
    words = sorted(w for w in english.ORTHO_CONTEXT if w.isalpha() and w not in common)
    rng.shuffle(words)
    extra = ["2013", "£3.5m", "1,200", "U.S.", "Obama's", "café", "Zürich", "naïve", "—", "'", "(AP)", "9/11", "50%"]
    return common + words[:8000] + extra


def _sentence(rng: random.Random, vocab: list[str], weights: list[float], n_words: int) -> list[str]:
    words = rng.choices(vocab, weights, k=n_words)
    words[0] = words[0].capitalize()
    return words


def synthetic_pairs(n: int, seed: int = 20250801) -> tuple[list[str], list[str]]:
    """`n` (reference, prediction) pairs, deterministic for a seed."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    references, predictions = [], []
    for _ in range(n):
        ref_sents = [_sentence(rng, vocab, weights, rng.randint(12, 28)) for _ in range(rng.randint(2, 4))]
        pred_sents = []
        for sent in ref_sents:
            kept = [w if rng.random() < 0.45 else rng.choices(vocab, weights)[0] for w in sent if rng.random() < 0.8]
            if len(kept) > 4 and rng.random() < 0.5:   # move a clause
                cut = rng.randrange(1, len(kept))
                kept = kept[cut:] + kept[:cut]
            pred_sents.append([w.capitalize() if k == 0 else w for k, w in enumerate(kept)])
        if rng.random() < 0.5:
            pred_sents.append(_sentence(rng, vocab, weights, rng.randint(5, 20)))
        references.append(" ".join(" ".join(s) + rng.choice([".", ".", ".", "!", "?"]) for s in ref_sents))
        predictions.append(" ".join(" ".join(s) + "." for s in pred_sents if s))
    return references, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=DATASET_SAMPLES)
    parser.add_argument("--processes", type=int, default=1, help="include.scoring.rouge's process pool size (default 1)")
    args = parser.parse_args()

    references, predictions = synthetic_pairs(args.pairs)
    # the same sentence-per-line texts evaluation.py hands to the metric
    references, predictions = postprocess_text(references), postprocess_text(predictions)
    words = sum(len(p.split()) for p in predictions) / len(predictions)
    print(f"pairs={len(references)} mean_prediction_words={words:.1f}", flush=True)

    start = time.perf_counter()
    expected = rouge.reference_score_many(references, predictions)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    got = rouge.score_many(references, predictions, processes=args.processes)
    ours_s = time.perf_counter() - start

    max_abs_diff = max(abs(a - b) for t in rouge.ROUGE_TYPES for a, b in zip(expected[t], got[t], strict=True))
    means = " ".join(f"{t}={100 * sum(got[t]) / len(got[t]):.4f}" for t in rouge.ROUGE_TYPES)
    print(f"reference_s={reference_s:.2f} ours_s={ours_s:.2f} {means}")
    print(f"rouge_speedup={reference_s / ours_s:.1f} max_abs_diff={max_abs_diff:.3g}")


if __name__ == "__main__":
    main()
