"""The length gate: from which input length physically removing pruned tokens pays, measured per engine.

Every engine can run a pruned model in two schedules with identical outputs: tokens removed at the
compaction layers, or only masked (no gathers, no host round trips, full-length feed-forward). On short
inputs the removal's fixed cost can exceed the work it saves. The gate `compact_min_length` sends inputs
shorter than it to the mask-only schedule (`TokenDroppingRunner(compact_min_length=...)`, and the export's
`--compact_min_length` for the SavedModel and the ONNX graph). `choose_min_length` picks it from timings of
both schedules, timed in turns on the same inputs; `calibrate` times them per engine (`ltp_tf.benchmark
--calibrate_gate` writes what it returns to `<tag>_length_gate.json`):

    {"<engine>": {"compact_min_length": N,
                  "median_ms_by_length": {"<bucket>": {"compact": ms, "masked": ms, "inputs": n}, ...}}}

Lengths are grouped in power-of-two buckets (bucket b holds lengths in (b/2, b]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ltp_tf.benchmarking.engines import EngineSettings, masked_predictor
from ltp_tf.benchmarking.timing import Predictor, time_after_warm_up

if TYPE_CHECKING:
    import keras

    from ltp_tf.data.glue import GlueTask


def length_buckets(lengths: Sequence[int]) -> np.ndarray:
    """The power-of-two bucket of each length (1, 2, 4, 8, ...)."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 1)
    return 1 << np.ceil(np.log2(lengths)).astype(np.int64)


def choose_min_length(lengths: Sequence[int], compact_seconds: Sequence[float],
                      masked_seconds: Sequence[float]) -> tuple[int, dict[int, dict[str, float]]]:
    """The gate from per-input timings of both schedules: `(compact_min_length, medians by bucket)`.

    The gate is the lower end of the shortest bucket from which compaction is not slower (by median) in
    that bucket and every longer one: 0 if it never is slower, one past the longest input if it always is.
    """
    lengths, compact, masked = (np.asarray(v) for v in (lengths, compact_seconds, masked_seconds))
    if not len(lengths) or not lengths.shape == compact.shape == masked.shape:
        raise ValueError("`lengths`, `compact_seconds` and `masked_seconds` must be non-empty and of one length. "
                         f"Received: {lengths.shape}, {compact.shape}, {masked.shape}")
    buckets = length_buckets(lengths)
    table = {int(b): {"compact": round(float(np.median(compact[buckets == b])) * 1e3, 3),
                      "masked": round(float(np.median(masked[buckets == b])) * 1e3, 3),
                      "inputs": int((buckets == b).sum())} for b in np.unique(buckets)}
    gate = int(lengths.max()) + 1
    for bucket in sorted(table, reverse=True):
        if table[bucket]["compact"] > table[bucket]["masked"]:
            break
        gate = bucket // 2 + 1 if bucket > 1 else 0
    return (0 if gate <= int(lengths.min()) else gate), table


def calibrate(engines: Sequence[str], model: keras.Model, task: GlueTask, inputs: list[dict[str, np.ndarray]],
              predictors: dict[str, dict[str, Predictor]], settings: EngineSettings, workdir: str,
              pruned_checkpoint: str) -> dict[str, dict[str, Any]]:
    """Per engine with a mask-only schedule (`masked_predictor`), the gate `choose_min_length` picks from
    both schedules of the pruned model timed in turns on `inputs` (batch 1): the JSON of the module docstring.

    `predictors`: each engine's `{"pruned": ...}` (the compacting schedule); `pruned_checkpoint`: the pruned model's
    checkpoint (the saved_model engine exports its mask-only schedule from it).
    """
    gates = {}
    for engine in engines:
        masked = masked_predictor(engine, model, task, settings, workdir, pruned_checkpoint)
        if masked is None:
            continue
        times = time_after_warm_up({"compact": predictors[engine]["pruned"], "masked": masked}, inputs)
        lengths = [int(row["padding_mask"].sum()) for row in inputs]
        gate, table = choose_min_length(lengths, times["compact"], times["masked"])
        gates[engine] = {"compact_min_length": gate, "median_ms_by_length": table}
        print(f"length gate {engine}: compact_min_length={gate} {table}", flush=True)
    return gates
