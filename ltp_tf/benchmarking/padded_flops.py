"""The FLOPs reduction as an engine executes it: every batch padded to its longest (kept) row.

LTP's FLOPs reduction (`ltp_tf.flops.count_flops`) counts unpadded lengths; an engine that runs a batch pads
it to its longest row, and after each layer to its longest kept row (the runner also to its shape buckets,
`ltp_tf.inference.shape_buckets`). The padded reduction is the bound padded batching puts on the speedup.
"""

from __future__ import annotations

import numpy as np

from ltp_tf.flops import layer_flops
from ltp_tf.inference.shape_buckets import round_up_batch, round_up_length


def padded_flops_reduction(lengths: np.ndarray, kept: np.ndarray, batch_size: int, hidden_dim: int,
                           intermediate_dim: int, length_bucket: int = 1, pad_batch: bool = False) -> float:
    """Dense / pruned FLOPs as executed with padding: each batch padded to its longest (kept) row.

    Batches are consecutive rows. Lengths are rounded up as the runner does (`length_bucket`, batch to a
    power of two with `pad_batch`); `length_bucket=1, pad_batch=False` is the in-graph (SavedModel, ONNX)
    path. Every pruning layer removes tokens, as the runner's default compaction does.
    """
    dense = pruned = 0.0
    for start in range(0, len(lengths), batch_size):
        rows = slice(start, start + batch_size)
        count = len(lengths[rows])
        rows_run = round_up_batch(count) if pad_batch else count
        length = round_up_length(int(lengths[rows].max()), length_bucket, 10**9)
        dense += rows_run * kept.shape[1] * float(layer_flops(hidden_dim, intermediate_dim, length, length))
        for layer in range(kept.shape[1]):
            out = min(length, round_up_length(int(kept[rows, layer].max()), length_bucket, 10**9))
            pruned += rows_run * float(layer_flops(hidden_dim, intermediate_dim, length, out))
            length = out
    return dense / pruned
