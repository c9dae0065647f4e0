"""Dense vs pruned speed of one model through the XLA token-dropping runner: batch-1 median latency and
throughput at each batch size, the pruned model and its dense twin (same weights, pruning off) timed call by
call in turn after a warm-up pass (`timing`).

`benchmarks.sweep` times every point this way on the CPU; `benchmarks/runner_speed.py` times a checkpoint
from a features folder, which is how the GPU machine (no TensorFlow text ops) measures.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ltp_tf.benchmarking.inputs import batches
from ltp_tf.benchmarking.timing import median_ms, time_after_warm_up
from ltp_tf.models.surgery import without_token_pruning


def measure(model, dev: Mapping[str, np.ndarray], latency_examples: int,
            calibration: Mapping[str, np.ndarray] | None = None,
            batch_sizes: Sequence[int] = (32,)) -> dict[str, float]:
    """Times `model` (a `TokenPruningClassifier`) and its dense twin on `dev` features.

    Batch 1 on the first `latency_examples` examples (median ms); each batch size over all of `dev`
    (examples/s). With `calibration` features, the pruned runner first fits its batch-1 capacities on them
    (one compiled program per call instead of one per pruning layer, as `ltp_tf.benchmark` serves batch 1).

    Returns `latency_ms_{pruned,dense}`, `speedup_batch1` and, per batch size b,
    `throughput_batch{b}_{pruned,dense}` and `speedup_batch{b}`.
    """
    from ltp_tf.inference import TokenDroppingRunner

    if latency_examples < 1:
        raise ValueError(f"`latency_examples` must be an integer >= 1. Received: latency_examples={latency_examples}")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ValueError(f"`batch_sizes` must be integers >= 1. Received: batch_sizes={tuple(batch_sizes)}")
    runners = {"pruned": TokenDroppingRunner(model), "dense": TokenDroppingRunner(without_token_pruning(model))}
    if calibration is not None:
        runners["pruned"].fit_capacities(dict(calibration))
    dev = dict(dev)
    latency = median_ms(time_after_warm_up(runners, batches(dev, 1, latency_examples)))  # warm-up compiles buckets
    speed = {"latency_ms_pruned": latency["pruned"], "latency_ms_dense": latency["dense"],
             "speedup_batch1": latency["dense"] / latency["pruned"]}
    examples = len(dev["token_ids"])
    for batch_size in batch_sizes:
        seconds = time_after_warm_up(runners, batches(dev, batch_size))
        speed[f"throughput_batch{batch_size}_pruned"] = examples / float(seconds["pruned"].sum())
        speed[f"throughput_batch{batch_size}_dense"] = examples / float(seconds["dense"].sum())
        speed[f"speedup_batch{batch_size}"] = float(seconds["dense"].sum() / seconds["pruned"].sum())
    return speed
