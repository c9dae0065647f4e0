"""GLUE readers on the real files (row counts from SOURCES.md), errors, and tokenization."""

import os

import numpy as np
import pytest

from ltp_tf.data import get_task, load_preprocessor, read_split, tokenize, trim_to_longest
from ltp_tf.models.pretrained import packaged_minilm_path

# (task, split): (rows, label counts or None) as SOURCES.md lists them.
EXPECTED = {
    ("sst2", "train"): (67349, {1: 37569, 0: 29780}),
    ("sst2", "dev"): (872, {1: 444, 0: 428}),
    ("mrpc", "train"): (3668, {1: 2474, 0: 1194}),
    ("mrpc", "dev"): (408, {1: 279, 0: 129}),
    ("rte", "train"): (2490, {0: 1249, 1: 1241}),
    ("rte", "dev"): (277, {0: 146, 1: 131}),
    ("stsb", "train"): (5749, None),
    ("stsb", "dev"): (1500, None),
    ("qnli", "dev"): (5463, {0: 2702, 1: 2761}),
    ("cola", "train"): (8551, {1: 6023, 0: 2528}),
    ("cola", "dev"): (1043, {1: 721, 0: 322}),
}


@pytest.mark.parametrize("task, split", sorted(EXPECTED))
def test_real_split_row_counts_and_labels(glue_dir, task, split):
    examples = read_split(task, split, glue_dir)
    rows, label_counts = EXPECTED[(task, split)]
    assert len(examples) == rows
    assert len(examples.texts) == (2 if get_task(task).is_pair else 1)
    assert all(len(column) == rows for column in examples.texts)
    if label_counts is None:
        assert examples.labels.dtype == np.float32 and 0 <= examples.labels.min() and examples.labels.max() <= 5
    else:
        assert dict(zip(*np.unique(examples.labels, return_counts=True))) == label_counts


def test_missing_splits_name_the_path(glue_dir):
    with pytest.raises(FileNotFoundError, match=os.path.join("QNLI", "train.tsv")):
        read_split("qnli", "train", glue_dir)
    with pytest.raises(FileNotFoundError, match=os.path.join("MNLI", "dev_matched.tsv")):
        read_split("mnli", "dev_matched", glue_dir)


def test_unknown_task_and_split():
    with pytest.raises(ValueError, match="`task` must be one of"):
        get_task("imdb")
    with pytest.raises(ValueError, match="`split` must be one of \\['train', 'dev'\\]"):
        read_split("sst2", "test")
    assert get_task("SST-2") is get_task("sst2") and get_task("STS-B").is_regression


def test_malformed_row_names_file_and_line(tmp_path):
    folder = tmp_path / "RTE"
    folder.mkdir()
    (folder / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\n")
    with pytest.raises(ValueError, match="train.tsv:3: malformed RTE row"):
        read_split("rte", "train", str(tmp_path))
    (folder / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(ValueError, match="train.tsv:2: RTE label must be one of"):
        read_split("rte", "train", str(tmp_path))


@pytest.fixture(scope="module")
def preprocessor():
    return load_preprocessor(packaged_minilm_path(), sequence_length=16)


def test_pairs_are_cls_a_sep_b_sep_with_segments(preprocessor):
    features = tokenize(preprocessor, (["hello world"], ["good day"]))
    vocabulary = preprocessor.tokenizer.get_vocabulary()
    tokens = [vocabulary[i] for i in features.token_ids[0][features.padding_mask[0]]]
    assert tokens == ["[CLS]", "hello", "world", "[SEP]", "good", "day", "[SEP]"]
    np.testing.assert_array_equal(features.segment_ids[0][:7], [0, 0, 0, 0, 1, 1, 1])


def test_long_text_is_truncated_and_batches_trimmed(preprocessor):
    features = tokenize(preprocessor, (["word " * 100, "short"],))
    assert features.token_ids.shape == (2, 16) and features.lengths.tolist() == [16, 3]
    trimmed = trim_to_longest(tokenize(preprocessor, (["a b", "c"],)).as_dict())
    assert trimmed["token_ids"].shape == (2, 4)


def test_bad_tokenizer_arguments(preprocessor, tmp_path):
    with pytest.raises(ValueError, match="empty batch"):
        tokenize(preprocessor, ([],))
    with pytest.raises(ValueError, match="`sequence_length` must be an integer in \\[8, 512\\]"):
        load_preprocessor(packaged_minilm_path(), sequence_length=1024)
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_preprocessor(str(tmp_path))
