"""`ltp_tf.benchmarking.dev_scores`: each engine's dense and pruned logits scored against a NumPy reference."""

import numpy as np
import pytest

from ltp_tf.benchmarking.dev_scores import describe, engine_dev_scores
from ltp_tf.data import get_task


def _predictor(logits):
    """A predictor that returns the next rows of `logits` for each batch (as an engine would)."""
    position = [0]

    def predict(batch):
        count = len(batch["token_ids"])
        rows = logits[position[0]:position[0] + count]
        position[0] += count
        return {"logits": rows}

    return predict


def _batches(count, size):
    return [{"token_ids": np.zeros((min(size, count - start), 3), "int32")} for start in range(0, count, size)]


def test_classification_scores_equal_numpy_accuracy_and_f1():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=37)
    dense, pruned = rng.normal(size=(37, 2)), rng.normal(size=(37, 2))
    scores = engine_dev_scores({"onnxruntime": {"dense": _predictor(dense), "pruned": _predictor(pruned)}},
                               _batches(37, 8), labels, get_task("mrpc"))

    def combined(logits):
        predicted = logits.argmax(1)
        accuracy = (predicted == labels).mean()
        tp = ((predicted == 1) & (labels == 1)).sum()
        f1 = 2 * tp / ((predicted == 1).sum() + (labels == 1).sum())
        return 100 * (accuracy + f1) / 2

    assert scores["onnxruntime"]["dense"] == pytest.approx(combined(dense), abs=0.006)
    assert scores["onnxruntime"]["pruned"] == pytest.approx(combined(pruned), abs=0.006)
    assert "onnxruntime: dense" in describe(scores, get_task("mrpc"))


def test_regression_scores_equal_numpy_correlations():
    from scipy import stats

    rng = np.random.default_rng(1)
    labels = rng.uniform(0, 5, size=20)
    logits = (labels + rng.normal(size=20))[:, None]
    scores = engine_dev_scores({"keras": {"pruned": _predictor(logits)}}, _batches(20, 6), labels, get_task("stsb"))
    pearson = np.corrcoef(labels, logits[:, 0])[0, 1]
    spearman = stats.spearmanr(labels, logits[:, 0]).statistic
    assert scores["keras"]["pruned"] == pytest.approx(100 * (pearson + spearman) / 2, abs=0.006)


def test_batches_that_miss_labels_are_refused():
    labels = np.zeros(10, "int64")
    with pytest.raises(ValueError, match="must cover the labels: 8 logits for 10 labels"):
        engine_dev_scores({"keras": {"dense": _predictor(np.zeros((10, 2)))}}, _batches(8, 4), labels,
                          get_task("sst2"))
