"""Length-bucketed dynamic padding: coverage, full batches, widths, determinism and exact resumption."""

import numpy as np
import pytest

from ltp_tf.data.features import LabeledFeatures
from ltp_tf.data.tokenization import TokenizedFeatures
from ltp_tf.training.batching import TrainBatches, epoch_batches, eval_batches, padded_width


def _data(lengths, width=64):
    lengths = np.asarray(lengths)
    mask = np.arange(width)[None, :] < lengths[:, None]
    token_ids = np.where(mask, 1000 + np.arange(len(lengths))[:, None], 0).astype(np.int32)
    return LabeledFeatures(TokenizedFeatures(token_ids, np.zeros_like(token_ids), mask),
                           np.arange(len(lengths), dtype=np.int32) % 2)


@pytest.mark.parametrize("longest, multiple, limit, expected",
                         [(1, 8, 64, 8), (8, 8, 64, 8), (9, 8, 64, 16), (61, 8, 64, 64), (61, 8, 62, 62), (17, 16, 64, 32)])
def test_padded_width(longest, multiple, limit, expected):
    assert padded_width(longest, multiple, limit) == expected


def test_epoch_covers_every_example_in_full_batches():
    lengths = np.random.default_rng(0).integers(2, 60, size=101)
    batches = epoch_batches(lengths, batch_size=16, seed=3, epoch=0)
    assert len(batches) == 7 and all(len(b) == 16 for b in batches)
    seen = np.concatenate(batches)
    assert set(seen) == set(range(101))  # every example; 11 fillers repeat some
    assert len(seen) - len(set(seen)) == 16 * 7 - 101
    # Deterministic per (seed, epoch); a new epoch reshuffles.
    again = epoch_batches(lengths, batch_size=16, seed=3, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = epoch_batches(lengths, batch_size=16, seed=3, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_bucketing_groups_similar_lengths():
    lengths = np.random.default_rng(1).integers(2, 64, size=3200)
    batches = epoch_batches(lengths, batch_size=32, seed=0, epoch=0)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.array_split(np.arange(3200), 100)])
    assert spread < random_spread / 4


def test_train_batches_are_trimmed_and_resume_exactly():
    data = _data(np.random.default_rng(2).integers(2, 40, size=50))
    full = TrainBatches(data, batch_size=8, seed=5, num_steps=20)  # 7 steps per epoch: crosses epochs
    resumed = TrainBatches(data, batch_size=8, seed=5, num_steps=11, start_step=9)
    assert len(full) == 20 and full.steps_per_epoch == 7
    for i in range(20):
        x, y = full[i]
        width = x["token_ids"].shape[1]
        longest = int(x["padding_mask"].sum(axis=1).max())
        assert width % 8 == 0 and longest <= width < longest + 8
        assert x["token_ids"].shape == x["segment_ids"].shape == x["padding_mask"].shape == (8, width)
        assert y.shape == (8,)
        if i >= 9:
            rx, ry = resumed[i - 9]
            np.testing.assert_array_equal(rx["token_ids"], x["token_ids"])
            np.testing.assert_array_equal(ry, y)
    with pytest.raises(IndexError):
        full[20]


def test_eval_batches_cover_each_row_once_with_full_batches():
    lengths = np.random.default_rng(3).integers(2, 64, size=45)
    data = _data(lengths)
    rows_seen = []
    for rows, inputs in eval_batches(data, batch_size=16, pad_to_multiple_of=8):
        assert inputs["token_ids"].shape[0] == 16
        # The real rows come first, in `rows` order, untruncated.
        np.testing.assert_array_equal(inputs["padding_mask"][:len(rows)].sum(axis=1), lengths[rows])
        rows_seen.extend(rows)
    assert sorted(rows_seen) == list(range(45))
