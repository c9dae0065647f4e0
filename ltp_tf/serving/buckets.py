"""Shape buckets for the token-dropping runner: round lengths and batch sizes up so compiled functions are reused.

XLA compiles one program per input shape. Rounding every sequence length up to a multiple of
`length_bucket` (and batch sizes up to a power of two) bounds the number of programs per layer, at the
price of a few padded slots. Padded slots are dead tokens: masked as attention keys, excluded from the
scores, never kept — so bucketing does not change any live token's result.
"""

from __future__ import annotations


def round_up_length(length: int, bucket: int, cap: int) -> int:
    """`length` rounded up to a multiple of `bucket`, at most `cap` but never below `length` (and >= 1).

    Raises:
        ValueError: if `bucket` < 1 or `length` > `cap`.
    """
    if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1:
        raise ValueError(f"`length_bucket` must be an integer >= 1. Received: length_bucket={bucket!r}")
    if length > cap:
        raise ValueError(f"Sequence length {length} exceeds the maximum {cap}.")
    length = max(int(length), 1)
    return min(-(-length // bucket) * bucket, cap)


def round_up_batch(batch_size: int) -> int:
    """The smallest power of two >= `batch_size` (>= 1)."""
    if batch_size < 1:
        raise ValueError(f"A batch needs at least one row. Received: batch_size={batch_size}")
    return 1 << (int(batch_size) - 1).bit_length()
