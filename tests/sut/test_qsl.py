"""The query sample library refuses a bad data set at once, naming the file and the field."""
import json

import pytest

from mlperf_sut.errors import InputError
from mlperf_sut.qsl import QuerySampleLibrary, Shard


def _write(tmp_path, content) -> object:
    path = tmp_path / "cnn_eval.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_loads_tok_input_and_subset(tmp_path):
    path = _write(tmp_path, [{"tok_input": [1, 2, 3], "input": "a"}, {"tok_input": [4]}, {"tok_input": [5, 6]}])
    qsl = QuerySampleLibrary.load(path, total_sample_count=2)
    assert qsl.prompts == [(1, 2, 3), (4,)]
    assert qsl.info.dataset_size == 3 and len(qsl.info.sha256) == 64


@pytest.mark.parametrize("content, expected", [
    ("[{", "not valid JSON"),
    ([], "empty"),
    ({"tok_input": [1]}, "expected a list"),
    ([{"tok_input": [1]}, {"input": "x"}], "sample 1 has no 'tok_input'"),
    ([{"tok_input": "1 2 3"}], "sample 0 field 'tok_input'"),
    ([{"tok_input": []}], "sample 0 field 'tok_input'"),
    ([{"tok_input": [1, -2]}], "sample 0 field 'tok_input'"),
])
def test_malformed_dataset_names_file_and_field(tmp_path, content, expected):
    path = _write(tmp_path, content)
    with pytest.raises(InputError) as error:
        QuerySampleLibrary.load(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        QuerySampleLibrary.load(tmp_path / "absent.json")


def test_total_sample_count_beyond_file(tmp_path):
    with pytest.raises(InputError, match="--total-sample-count 5"):
        QuerySampleLibrary.load(_write(tmp_path, [{"tok_input": [1]}]), total_sample_count=5)


def test_shards_are_contiguous_and_cover_everything(tmp_path):
    path = _write(tmp_path, [{"tok_input": [i]} for i in range(10)])
    shards = [QuerySampleLibrary.load(path, shard=Shard(i, 3)).prompts for i in range(3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert [p for s in shards for p in s] == [(i,) for i in range(10)]
