"""`ltp_tf.benchmarking.inputs`: dev batches cut to their longest row; `ltp_tf.data.concatenated_windows`: long inputs made of dev tokens."""

import numpy as np

from ltp_tf.benchmarking.inputs import batches
from ltp_tf.data import concatenated_windows

CLS, SEP = 101, 102


def _features(lengths, seq_len=10):
    rng = np.random.default_rng(0)
    mask = (np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)
    ids = rng.integers(1000, 2000, size=mask.shape).astype(np.int32)
    ids[:, 0] = CLS
    ids[np.arange(len(lengths)), np.asarray(lengths) - 1] = SEP
    return {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_batches_are_consecutive_and_cut_to_their_longest_row():
    features = _features([3, 5, 4, 2, 6, 3, 7])
    result = batches(features, 3, count=5)
    assert [b["token_ids"].shape for b in result] == [(3, 5), (2, 6)]
    np.testing.assert_array_equal(result[1]["token_ids"], features["token_ids"][3:5, :6])
    assert [b["padding_mask"].shape for b in batches(features, 4)] == [(4, 5), (3, 7)]


def test_long_inputs_are_dev_tokens_between_cls_and_sep():
    features = _features([4, 6, 5])
    body = np.concatenate([row[1:length - 1] for row, length in zip(features["token_ids"], [4, 6, 5])])
    result = concatenated_windows(features, 12, 3)
    ids = result["token_ids"]
    assert ids.shape == (3, 12) and ids.dtype == np.int32
    assert (ids[:, 0] == CLS).all() and (ids[:, -1] == SEP).all()
    np.testing.assert_array_equal(ids[:, 1:-1].reshape(-1), np.resize(body, 30))  # reused cyclically
    assert (result["padding_mask"] == 1).all() and (result["segment_ids"] == 0).all()
