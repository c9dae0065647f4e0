"""`ltp_tf.benchmarking.timing`: predictors taking turns of consecutive inputs, each call timed, the warm-up
untimed."""

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


def test_time_in_turns_runs_turns_of_consecutive_inputs_and_times_each_call(monkeypatch):
    calls = []
    inputs = [{"token_ids": np.full((1, 3), i)} for i in range(5)]
    # Calls take 1, 2, 3, ... seconds: the clock reads 0, 1 | 1, 3 | 3, 6 | ...
    durations = range(1, 11)
    ends = list(itertools.accumulate(durations, initial=0))
    monkeypatch.setattr(timing.time, "perf_counter", _Clock(t for a, b in zip(ends, ends[1:]) for t in (a, b)))
    times = timing.time_in_turns({"dense": _recording(calls, "dense"), "pruned": _recording(calls, "pruned")},
                                 inputs, calls_per_turn=2)
    assert calls == [("dense", 0), ("dense", 1), ("pruned", 0), ("pruned", 1), ("dense", 2), ("dense", 3),
                     ("pruned", 2), ("pruned", 3), ("dense", 4), ("pruned", 4)]
    # Times are in the order of the inputs.
    np.testing.assert_array_equal(times["dense"], [1, 2, 5, 6, 9])
    np.testing.assert_array_equal(times["pruned"], [3, 4, 7, 8, 10])


@pytest.mark.parametrize("calls_per_turn, order", [
    (1, [(name, i) for i in range(4) for name in "ab"]),
    (None, [(name, i) for name in "ab" for i in range(4)]),  # the default turn holds all 4 inputs
])
def test_time_after_warm_up_runs_every_input_once_untimed(calls_per_turn, order):
    calls = []
    inputs = [{"token_ids": np.full((1, 2), i)} for i in range(4)]
    times = timing.time_after_warm_up({"a": _recording(calls, "a"), "b": _recording(calls, "b")}, inputs,
                                      calls_per_turn)
    assert calls[:8] == calls[8:] == order
    assert {name: values.shape for name, values in times.items()} == {"a": (4,), "b": (4,)}
    assert all((values >= 0).all() for values in times.values())


def test_time_after_warm_up_repeats_the_timed_pass_only():
    calls = []
    inputs = [{"token_ids": np.full((1, 2), i)} for i in range(3)]
    times = timing.time_after_warm_up({"a": _recording(calls, "a")}, inputs, repeats=3)
    assert calls == [("a", i) for i in range(3)] * 4  # the warm-up pass, then three timed passes
    assert times["a"].shape == (9,)
    with pytest.raises(ValueError, match=r"`repeats` must be an integer >= 1\. Received"):
        timing.time_after_warm_up({"a": _recording(calls, "a")}, inputs, repeats=0)


@pytest.mark.parametrize("calls, min_calls, repeats", [(1, 8, 8), (3, 8, 3), (8, 8, 1), (20, 8, 1), (5, 1, 1)])
def test_repeats_for_reaches_the_minimum_number_of_calls(calls, min_calls, repeats):
    assert timing.repeats_for(calls, min_calls) == repeats
    assert calls * repeats >= min_calls > calls * (repeats - 1) or repeats == 1


@pytest.mark.parametrize("calls_per_turn", [0, -1, 1.5, True])
def test_time_in_turns_rejects_a_bad_turn(calls_per_turn):
    with pytest.raises(ValueError, match=r"`calls_per_turn` must be an integer >= 1\. Received"):
        timing.time_in_turns({"a": lambda batch: None}, [{}], calls_per_turn)


def test_median_ms():
    assert timing.median_ms({"a": np.array([0.003, 0.001, 0.002]), "b": np.array([0.5, 1.5])}) == pytest.approx(
        {"a": 2.0, "b": 1000.0})
