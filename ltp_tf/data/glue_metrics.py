"""GLUE metrics as the benchmark defines them, computed with scikit-learn and SciPy.

accuracy (SST-2, QNLI, RTE, MNLI), F1 of the positive class and accuracy (MRPC, QQP), Matthews
correlation (CoLA), Pearson and Spearman correlation (STS-B). Tasks with two metrics also get
`combined_score`, their mean, which is what selects the best checkpoint (as Hugging Face's GLUE runner).
"""

from __future__ import annotations

import math

import numpy as np

from ltp_tf.data.glue import GlueTask


def predictions_from_logits(task: GlueTask, logits: np.ndarray) -> np.ndarray:
    """Class ids (argmax) for classification, the single output for regression."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != task.num_classes:
        raise ValueError(f"Logits for {task.name} must have shape (examples, {task.num_classes}). "
                         f"Received: shape={logits.shape}")
    return logits[:, 0].astype(np.float64) if task.is_regression else logits.argmax(axis=1)


def compute_metrics(task: GlueTask, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The task's GLUE metrics (plus `combined_score` where it has two)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError("`labels` and `predictions` must be non-empty 1-D arrays of the same length. "
                         f"Received: shapes {labels.shape} and {predictions.shape}")
    from scipy import stats
    from sklearn import metrics as skm

    functions = {
        "accuracy": lambda: skm.accuracy_score(labels, predictions),
        "f1": lambda: skm.f1_score(labels, predictions, zero_division=0.0),
        "matthews_corrcoef": lambda: skm.matthews_corrcoef(labels, predictions),
        "pearson": lambda: _correlation(stats.pearsonr, labels, predictions),
        "spearman": lambda: _correlation(stats.spearmanr, labels, predictions),
    }
    results = {name: float(functions[name]()) for name in task.metrics}
    if len(task.metrics) > 1:
        results["combined_score"] = float(np.mean([results[name] for name in task.metrics]))
    return results


def primary_metric(task: GlueTask) -> str:
    """The metric that picks the best checkpoint: `combined_score` for two-metric tasks, else the metric."""
    return "combined_score" if len(task.metrics) > 1 else task.metrics[0]


def is_better(score: float, best: float | None) -> bool:
    """Whether `score` beats `best` (a NaN score, e.g. the correlation of constant predictions, never does)."""
    return not math.isnan(score) and (best is None or score > best)


def _correlation(function, labels: np.ndarray, predictions: np.ndarray) -> float:
    if np.ptp(labels) == 0 or np.ptp(predictions) == 0:
        return float("nan")  # undefined for constant input
    return float(function(labels, predictions)[0])
