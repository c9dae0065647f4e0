"""`ltp_tf.benchmarking.length_gate.choose_min_length`: the length gate from timings of both schedules."""

import numpy as np
import pytest

from ltp_tf.benchmarking.length_gate import choose_min_length, length_buckets


def test_length_buckets():
    assert length_buckets([1, 2, 3, 8, 9, 100]).tolist() == [1, 2, 4, 8, 16, 128]


def test_gate_from_timings():
    lengths = [3, 4, 6, 7, 12, 14, 30, 31]
    # compaction slower up to bucket 8, faster from bucket 16 on: lengths >= 9 compact
    compact = np.array([2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0])
    masked = np.array([1.0, 1.0, 2.0, 2.0, 5.0, 5.0, 9.0, 9.0])
    gate, table = choose_min_length(lengths, compact, masked)
    assert gate == 9 and sorted(table) == [4, 8, 16, 32]
    assert table[16] == {"compact": 4000.0, "masked": 5000.0, "inputs": 2}
    assert choose_min_length(lengths, masked, compact)[0] == 32  # slower on the longest: nothing compacts
    assert choose_min_length(lengths, masked / 2, masked)[0] == 0  # never slower: always compact
    # a slower bucket below faster ones still sets the gate above it, even if a shorter one was faster
    compact[:2] = 0.5
    assert choose_min_length(lengths, compact, masked)[0] == 9
    with pytest.raises(ValueError, match="non-empty"):
        choose_min_length([], [], [])
