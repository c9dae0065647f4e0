"""`ltp_tf.benchmarking.timing`: predictors called in turn per input, each call timed, the warm-up untimed."""

import itertools

import numpy as np
import pytest

from ltp_tf.benchmarking import timing


class _Clock:
    """A `perf_counter` stand-in: each call returns the next value of `ticks`."""

    def __init__(self, ticks):
        self.ticks = iter(ticks)

    def __call__(self):
        return next(self.ticks)


def _recording(calls, name):
    return lambda batch: calls.append((name, int(batch["token_ids"][0, 0])))


def test_time_interleaved_calls_in_turn_and_times_each_call(monkeypatch):
    calls = []
    inputs = [{"token_ids": np.full((1, 3), i)} for i in range(3)]
    # Calls take 1, 2, 3, ... seconds: the clock reads 0, 1 | 1, 3 | 3, 6 | ...
    durations = range(1, 7)
    ends = list(itertools.accumulate(durations, initial=0))
    monkeypatch.setattr(timing.time, "perf_counter", _Clock(t for a, b in zip(ends, ends[1:]) for t in (a, b)))
    times = timing.time_interleaved({"dense": _recording(calls, "dense"), "pruned": _recording(calls, "pruned")},
                                    inputs)
    assert calls == [("dense", 0), ("pruned", 0), ("dense", 1), ("pruned", 1), ("dense", 2), ("pruned", 2)]
    np.testing.assert_array_equal(times["dense"], [1, 3, 5])
    np.testing.assert_array_equal(times["pruned"], [2, 4, 6])


def test_time_after_warm_up_runs_every_input_once_untimed():
    calls = []
    inputs = [{"token_ids": np.full((1, 2), i)} for i in range(4)]
    times = timing.time_after_warm_up({"a": _recording(calls, "a"), "b": _recording(calls, "b")}, inputs)
    assert calls[:8] == calls[8:] == [(name, i) for i in range(4) for name in "ab"]
    assert {name: values.shape for name, values in times.items()} == {"a": (4,), "b": (4,)}
    assert all((values >= 0).all() for values in times.values())


def test_median_ms():
    assert timing.median_ms({"a": np.array([0.003, 0.001, 0.002]), "b": np.array([0.5, 1.5])}) == pytest.approx(
        {"a": 2.0, "b": 1000.0})
