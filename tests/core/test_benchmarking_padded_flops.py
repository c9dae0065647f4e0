"""`ltp_tf.benchmarking.padded_flops`: the FLOPs reduction as padded batches execute it."""

import numpy as np

from ltp_tf import count_flops
from ltp_tf.benchmarking.padded_flops import padded_flops_reduction


def test_padded_flops_reduction():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 40, size=20)
    kept = np.stack([lengths, np.maximum(lengths // 2, 1), np.maximum(lengths // 4, 1)], axis=1)
    unpadded = count_flops(64, 256, lengths, kept).reduction
    one_by_one = padded_flops_reduction(lengths, kept, 1, 64, 256)
    np.testing.assert_allclose(one_by_one, unpadded, rtol=1e-12)  # batch 1, exact lengths: nothing padded
    padded = padded_flops_reduction(lengths, kept, 8, 64, 256, length_bucket=8, pad_batch=True)
    assert 1.0 < padded < unpadded  # kept lengths vary more than input lengths: padding costs pruning more
