"""The embedded default model and data sets are deterministic and in the benchmark's exact format."""
import json

import numpy as np
from tokenizers import Tokenizer

from mlperf_sut.dataset import PROMPT_TEMPLATE, build_synthetic_token_dataset, build_text_dataset
from mlperf_sut.tiny_model import build_tiny_model

CNN_FIELDS = {"instruction", "input", "tok_input", "output"}


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_tiny_model_and_dataset_build_byte_identical(tmp_path):
    first, second = build_tiny_model(tmp_path / "a"), build_tiny_model(tmp_path / "b")
    assert _files(first) == _files(second)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(_files(first))
    # readable by the SUT image's non-root user when root built it (safetensors alone writes 0600)
    assert all(path.stat().st_mode & 0o044 == 0o044 for path in first.iterdir())
    config = json.loads((first / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (2, 256)

    one = build_text_dataset(first, 8, tmp_path / "one.json", seed=3)
    two = build_text_dataset(second, 8, tmp_path / "two.json", seed=3)
    assert one.read_bytes() == two.read_bytes()


def test_text_dataset_tokenises_the_benchmark_prompt(tiny_model, tmp_path):
    records = json.loads(build_text_dataset(tiny_model, 4, tmp_path / "cnn_eval.json").read_text())
    tokenizer = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    for record in records:
        assert set(record) == CNN_FIELDS
        assert record["tok_input"] == tokenizer.encode(PROMPT_TEMPLATE.format(input=record["input"])).ids
        assert record["tok_input"][0] == tokenizer.token_to_id("<|begin_of_text|>")


def test_synthetic_token_ids_follow_cnn_prompt_lengths(tmp_path):
    path = build_synthetic_token_dataset(128256, 2000, tmp_path / "cnn_eval.json", seed=1)
    records = json.loads(path.read_text())
    lengths = np.array([len(r["tok_input"]) for r in records])
    assert all(set(r) == CNN_FIELDS for r in records)
    assert 740 < lengths.mean() < 820 and lengths.min() >= 100 and lengths.max() <= 1900
    assert max(max(r["tok_input"]) for r in records) < 128000
    again = build_synthetic_token_dataset(128256, 2000, tmp_path / "again.json", seed=1)
    assert again.read_bytes() == path.read_bytes()
