"""What each engine serves, scored: the task's dev metric of the dense and pruned models through every engine.

Timing says how fast an engine is; this says whether it is still the same model. Exported graphs, XLA
programs and fused kernels compute the same function up to float rounding, but int8 quantization changes
logits, and through the token scores it changes which tokens are kept, so its accuracy must be measured, not
assumed. `engine_dev_scores` runs every predictor over the labelled dev batches once (untimed) and scores the
logits with the task's GLUE metric (`ltp_tf.data.glue_metrics`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ltp_tf.benchmarking.timing import Predictor
from ltp_tf.data.glue import GlueTask
from ltp_tf.data.glue_metrics import compute_metrics, predictions_from_logits, primary_metric


def engine_dev_scores(predictors: Mapping[str, Mapping[str, Predictor]], batches: Sequence[dict[str, np.ndarray]],
                      labels: np.ndarray, task: GlueTask) -> dict[str, dict[str, float]]:
    """`{engine: {"dense": score, "pruned": score}}`: the task's primary dev metric of each model's logits on
    `batches` (consecutive, covering `labels` in order) through each engine, in percent."""
    labels = np.asarray(labels)
    scores = {}
    for engine, models in predictors.items():
        scores[engine] = {}
        for name, predict in models.items():
            logits = np.concatenate([np.asarray(predict(batch)["logits"]) for batch in batches])
            if len(logits) != len(labels):
                raise ValueError(f"The batches must cover the labels: {len(logits)} logits for {len(labels)} "
                                 f"labels. Received: {len(batches)} batches")
            metrics = compute_metrics(task, labels, predictions_from_logits(task, logits))
            scores[engine][name] = round(100.0 * metrics[primary_metric(task)], 2)
    return scores


def describe(scores: Mapping[str, Mapping[str, float]], task: GlueTask) -> str:
    """One line per engine for the run information: `engine: dense D, pruned P (P - D)`."""
    return "; ".join(f"{engine}: dense {pair['dense']:.2f}, pruned {pair['pruned']:.2f} "
                     f"({pair['pruned'] - pair['dense']:+.2f})" for engine, pair in scores.items()) + \
        f" ({primary_metric(task)} x 100, {task.name} dev)"
