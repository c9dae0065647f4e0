"""Shape buckets for the token-dropping runner: round lengths and batch sizes up so compiled programs are reused.

XLA compiles one program per input shape. Lengths are rounded up to the next power of two while that
is below `length_bucket`, and to a multiple of `length_bucket` above it (bucket 8: 1, 2, 4, 8, 16, 24, ...),
and batch sizes to a power of two. That bounds the programs per layer at the price of a few padded
slots. Padded slots are dead tokens — masked as attention keys, excluded from the scores, never kept —
so bucketing does not change any live token's result.
"""

from __future__ import annotations


def round_up_length(length: int, bucket: int, cap: int) -> int:
    """`length` rounded up to its bucket (see the module docstring), at most `cap`, at least 1.

    Raises:
        ValueError: if `bucket` is not an integer >= 1, or `length` > `cap`.
    """
    if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 1:
        raise ValueError(f"`length_bucket` must be an integer >= 1. Received: length_bucket={bucket!r}")
    if length > cap:
        raise ValueError(f"Sequence length {length} exceeds the maximum {cap}.")
    length = max(int(length), 1)
    return min(_next_power_of_two(length), -(-length // bucket) * bucket, cap)


def length_buckets(bucket: int, longest: int, cap: int) -> list[int]:
    """Every bucket an input of 1 to `longest` positions is rounded up to (`round_up_length` with `cap`), sorted.

    Bucket 8, longest 100, cap 512: `[1, 2, 4, 8, 16, 24, ..., 96, 104]`.
    """
    return sorted({round_up_length(length, bucket, cap) for length in range(1, longest + 1)})


def round_up_batch(batch_size: int) -> int:
    """The smallest power of two >= `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"A batch needs at least one row. Received: batch_size={batch_size}")
    return _next_power_of_two(batch_size)


def _next_power_of_two(value: int) -> int:
    return 1 << (int(value) - 1).bit_length()
