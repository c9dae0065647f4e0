"""Latency timing, one home for every measurement: predictors timed call by call in turn on the same inputs.

`ltp_tf.benchmark` (every engine, every batch size, the length gate's calibration), `benchmarks/sweep.py`,
the pipeline's evaluator and `benchmarks/profile_onnx.py` time through these functions. A predictor maps
a batch (`{"token_ids", "segment_ids", "padding_mask"}` NumPy arrays) to its outputs. Predictors are called
in turn per input (dense, pruned, dense, ...), so a change in machine load affects them alike; the warm-up
pass of `time_after_warm_up` first runs every input once, so compiling a shape (a runner's length bucket,
an XLA program) is never timed.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

Predictor = Callable[[dict[str, np.ndarray]], Any]


def time_interleaved(predictors: Mapping[str, Predictor],
                     inputs: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Seconds per call of every predictor on every input, the predictors called in turn per input."""
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for batch in inputs:
        for name, predict in predictors.items():
            start = time.perf_counter()
            predict(batch)
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(values) for name, values in times.items()}


def time_after_warm_up(predictors: Mapping[str, Predictor],
                       inputs: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`time_interleaved` after one untimed pass over the same `inputs` (compiles every shape first)."""
    time_interleaved(predictors, inputs)
    return time_interleaved(predictors, inputs)


def median_ms(times: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The median of each predictor's seconds per call, in milliseconds."""
    return {name: 1e3 * float(np.median(seconds)) for name, seconds in times.items()}
