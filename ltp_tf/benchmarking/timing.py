"""Latency timing, one home for every measurement: predictors timed in turns on the same inputs.

`ltp_tf.benchmark` (every engine, every batch size, the length gate's calibration), `benchmarks/sweep.py`,
the pipeline's evaluator and `benchmarks/profile_onnx.py` time through these functions. A predictor maps
a batch (`{"token_ids", "segment_ids", "padding_mask"}` NumPy arrays) to its outputs.

Predictors take turns of `CALLS_PER_TURN` consecutive inputs (dense runs inputs 0-31, pruned runs 0-31,
dense runs 32-63, ...), each call timed: a change in machine load affects them alike, and each predictor is
timed in the steady state a server serving that one model sees. Calling them alternately input by input
measured something else: an ONNX Runtime session's intra-op threads spin for a while after each run and
took the cores from the other model's next call, and each call found the other model's weights in the
cache (on the 2-core machine, dense int8 ORT at batch 1: 8.9 ms alternating call by call, 2.4 ms in turns
of a model's own calls; turns of 8 calls were still disturbed at batch 1, turns of 32 and 64 agreed;
benchmarks/README.md "Timing in turns"). The warm-up pass of `time_after_warm_up`
first runs every input once, so compiling a shape (a runner's length bucket, an XLA program) is never timed.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ltp_tf.validation import check_int_at_least

Predictor = Callable[[dict[str, np.ndarray]], Any]


# Consecutive calls of one predictor per turn (module docstring).
CALLS_PER_TURN = 32


def time_in_turns(predictors: Mapping[str, Predictor], inputs: Sequence[dict[str, np.ndarray]],
                  calls_per_turn: int | None = None) -> dict[str, np.ndarray]:
    """Seconds per call of every predictor on every input (in the order of `inputs`), the predictors taking
    turns of `calls_per_turn` (default `CALLS_PER_TURN`) consecutive inputs."""
    calls_per_turn = CALLS_PER_TURN if calls_per_turn is None else calls_per_turn
    check_int_at_least("calls_per_turn", calls_per_turn, 1)
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for start in range(0, len(inputs), calls_per_turn):
        turn = inputs[start:start + calls_per_turn]
        for name, predict in predictors.items():
            for batch in turn:
                begin = time.perf_counter()
                predict(batch)
                times[name].append(time.perf_counter() - begin)
    return {name: np.asarray(values) for name, values in times.items()}


def time_after_warm_up(predictors: Mapping[str, Predictor], inputs: Sequence[dict[str, np.ndarray]],
                       calls_per_turn: int | None = None, repeats: int = 1) -> dict[str, np.ndarray]:
    """`time_in_turns` on `inputs` repeated `repeats` times (one timed call per input and repeat), after one
    untimed pass over `inputs` (compiles every shape first)."""
    check_int_at_least("repeats", repeats, 1)
    time_in_turns(predictors, inputs, calls_per_turn)
    return time_in_turns(predictors, list(inputs) * repeats, calls_per_turn)


def repeats_for(calls: int, min_calls: int) -> int:
    """How many passes over `calls` inputs time at least `min_calls` calls (at least one pass)."""
    check_int_at_least("calls", calls, 1)
    check_int_at_least("min_calls", min_calls, 1)
    return -(-min_calls // calls)


def median_ms(times: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The median of each predictor's seconds per call, in milliseconds."""
    return {name: 1e3 * float(np.median(seconds)) for name, seconds in times.items()}
