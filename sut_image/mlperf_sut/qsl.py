"""Query sample library: the MLPerf `cnn_eval.json` prompts (their `tok_input` token ids) as LoadGen sees them.

A malformed data set fails here, before any engine starts, naming the file, the sample and the field.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mlperf_sut.errors import InputError

REQUIRED_FIELD = "tok_input"


@dataclass(frozen=True, slots=True)
class Shard:
    """This node's contiguous slice of the samples (like numpy.array_split): shard `index` of `count`."""

    index: int
    count: int

    def bounds(self, total: int) -> tuple[int, int]:
        size, extra = divmod(total, self.count)
        start = self.index * size + min(self.index, extra)
        return start, start + size + (1 if self.index < extra else 0)


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    path: Path
    dataset_size: int
    sha256: str


class QuerySampleLibrary:
    """The prompts LoadGen may draw from; all held in memory (the full data set is ~10M token ids)."""

    def __init__(self, prompts: list[tuple[int, ...]], info: DatasetInfo) -> None:
        self.prompts = prompts
        self.info = info

    @classmethod
    def load(cls, path: Path, total_sample_count: int | None = None, shard: Shard | None = None) -> QuerySampleLibrary:
        """Read `path`; keep the first `total_sample_count` samples, then this `shard` of them."""
        if not path.is_file():
            raise InputError(f"--dataset {path}: no such file (build one with: python -m mlperf_sut build-dataset ...)")
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise InputError(f"--dataset {path}: cannot read it ({error.strerror or error})") from None
        try:
            records = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not valid JSON ({error}); expected the cnn_eval.json format, a list of "
                             f"objects with a '{REQUIRED_FIELD}' field") from None
        if not isinstance(records, list):
            raise InputError(f"{path}: top level is a {type(records).__name__}; expected a list of samples, each "
                             f"with a '{REQUIRED_FIELD}' field (cnn_eval.json format)")
        if not records:
            raise InputError(f"{path}: the data set is empty; it needs at least one sample with '{REQUIRED_FIELD}'")
        count = len(records) if total_sample_count is None else total_sample_count
        if count < 1 or count > len(records):
            raise InputError(f"--total-sample-count {count}: must be between 1 and the {len(records)} samples "
                             f"in {path}")
        prompts = [_prompt(path, i, record) for i, record in enumerate(records[:count])]
        if shard is not None:
            if not 0 <= shard.index < shard.count or shard.count > count:
                raise InputError(f"--shard-index {shard.index} --shard-count {shard.count}: need 0 <= index < count "
                                 f"<= {count} samples")
            start, end = shard.bounds(count)
            prompts = prompts[start:end]
        return cls(prompts, DatasetInfo(path, len(records), hashlib.sha256(raw).hexdigest()))

    def __len__(self) -> int:
        return len(self.prompts)

    def construct(self):
        """The LoadGen QSL handle; every sample is already in memory, so loading and unloading do nothing."""
        import mlperf_loadgen as lg

        return lg.ConstructQSL(len(self.prompts), len(self.prompts), _noop, _noop)


def _noop(_sample_indices) -> None:
    """Samples live in memory for the whole run."""


def _prompt(path: Path, index: int, record: object) -> tuple[int, ...]:
    if not isinstance(record, dict):
        raise InputError(f"{path}: sample {index} is a {type(record).__name__}; expected an object with "
                         f"'{REQUIRED_FIELD}'")
    if REQUIRED_FIELD not in record:
        raise InputError(f"{path}: sample {index} has no '{REQUIRED_FIELD}' field (the prompt's token ids); "
                         "rebuild the data set with build-dataset")
    tokens = record[REQUIRED_FIELD]
    if not isinstance(tokens, list) or not tokens or not all(type(t) is int and t >= 0 for t in tokens):
        raise InputError(f"{path}: sample {index} field '{REQUIRED_FIELD}' must be a non-empty list of "
                         "non-negative integers (token ids)")
    return tuple(tokens)
