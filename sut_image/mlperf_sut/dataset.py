"""Builders for data sets in the exact MLPerf `cnn_eval.json` format (a list of instruction/input/tok_input/output).

Two kinds, both deterministic from a seed and built offline:
- text: generated articles and highlights, `tok_input` from a tokenizer applied to the benchmark's prompt text;
- synthetic token ids: for GPU performance runs with dummy weights and no tokenizer; prompt lengths follow the
  CNN/DailyMail llama3 prompt-length distribution (lognormal, mean ~779 tokens, clipped to 100-1900).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from mlperf_sut.errors import InputError
from mlperf_sut.synthetic_text import TextGenerator

INSTRUCTION = ("Summarize the following news article in 128 tokens. "
               "Please output the summary only, without any other text.")
# The reference implementation's prompt (no chat template).
PROMPT_TEMPLATE = INSTRUCTION + "\n\nArticle:\n{input}\n\nSummary:"

PROMPT_LENGTH_MEAN = 779
PROMPT_LENGTH_SIGMA = 0.45
PROMPT_LENGTH_MIN, PROMPT_LENGTH_MAX = 100, 1900
# Llama 3 ids from 128000 up are special tokens: keep synthetic prompts out of them.
SPECIAL_TOKENS_START = 128000


def build_text_dataset(tokenizer_dir: Path, samples: int, output: Path, seed: int = 0) -> Path:
    """Generated articles tokenised with the model's tokenizer (the tiny model's, for the embedded default)."""
    from tokenizers import Tokenizer

    tokenizer_file = tokenizer_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise InputError(f"--tokenizer {tokenizer_dir}: no tokenizer.json there (build the tiny model first: "
                         "python -m mlperf_sut build-tiny-model --output DIR)")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    generator = TextGenerator(seed)
    records = []
    for _ in range(samples):
        article = "\n".join(generator.paragraph(generator_sentences) for generator_sentences in (4, 3, 3))
        highlights = "\n".join(generator.sentence() for _ in range(3))
        records.append({"instruction": INSTRUCTION, "input": article,
                        "tok_input": tokenizer.encode(PROMPT_TEMPLATE.format(input=article)).ids,
                        "output": highlights})
    return _write(records, output)


def build_synthetic_token_dataset(vocab_size: int, samples: int, output: Path, seed: int = 0) -> Path:
    """Random token-id prompts with CNN/DailyMail-like lengths; `input`/`output` hold placeholders (no tokenizer)."""
    import numpy as np

    if vocab_size < 2:
        raise InputError(f"--vocab-size {vocab_size}: must be at least 2 (the model's config.json vocab_size)")
    rng = np.random.default_rng(seed)
    mu = math.log(PROMPT_LENGTH_MEAN) - PROMPT_LENGTH_SIGMA ** 2 / 2
    lengths = np.clip(np.rint(rng.lognormal(mu, PROMPT_LENGTH_SIGMA, samples)), PROMPT_LENGTH_MIN,
                      PROMPT_LENGTH_MAX).astype(int)
    high = min(vocab_size, SPECIAL_TOKENS_START)
    records = [{"instruction": INSTRUCTION, "input": f"synthetic sample {i}: {n} random token ids",
                "tok_input": rng.integers(0, high, n).tolist(), "output": ""}
               for i, n in enumerate(lengths)]
    return _write(records, output)


def _write(records: list[dict], output: Path) -> Path:
    if not records:
        raise InputError("--samples must be at least 1")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    return output
