"""GLUE metrics against values computed by hand."""

import math

import numpy as np
import pytest

from ltp_tf.data.glue import get_task
from ltp_tf.data.glue_metrics import compute_metrics, is_better, predictions_from_logits, primary_metric


def test_accuracy_sst2():
    labels = np.array([1, 0, 1, 1, 0])
    predictions = np.array([1, 0, 0, 1, 1])
    assert compute_metrics(get_task("sst2"), labels, predictions) == {"accuracy": pytest.approx(3 / 5)}


def test_f1_and_accuracy_mrpc():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = np.array([1, 1, 0, 1, 0, 0, 1, 1])
    # tp=3, fp=2, fn=1: precision 3/5, recall 3/4, F1 = 2pr/(p+r) = 2/3; accuracy 5/8.
    metrics = compute_metrics(get_task("mrpc"), labels, predictions)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(5 / 8)
    assert metrics["combined_score"] == pytest.approx((2 / 3 + 5 / 8) / 2)
    assert primary_metric(get_task("mrpc")) == "combined_score"


def test_matthews_cola():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = np.array([1, 1, 0, 1, 0, 0, 1, 1])
    tp, tn, fp, fn = 3, 2, 2, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert compute_metrics(get_task("cola"), labels, predictions) == {"matthews_corrcoef": pytest.approx(expected)}
    assert primary_metric(get_task("cola")) == "matthews_corrcoef"


def test_pearson_and_spearman_stsb():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    predictions = np.array([1.0, 3.0, 2.0, 5.0])
    # Pearson by hand: means 2.5 and 2.75.
    dx, dy = labels - 2.5, predictions - 2.75
    pearson = (dx * dy).sum() / math.sqrt((dx**2).sum() * (dy**2).sum())
    # Spearman: ranks (1,2,3,4) vs (1,3,2,4): 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*2/60 = 0.8.
    metrics = compute_metrics(get_task("stsb"), labels, predictions)
    assert metrics["pearson"] == pytest.approx(pearson)
    assert metrics["spearman"] == pytest.approx(0.8)
    assert metrics["combined_score"] == pytest.approx((pearson + 0.8) / 2)


def test_constant_regression_predictions_give_nan_that_never_wins():
    metrics = compute_metrics(get_task("stsb"), np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert math.isnan(metrics["pearson"]) and math.isnan(metrics["spearman"])
    assert not is_better(metrics["pearson"], None)
    assert is_better(0.5, None) and is_better(0.6, 0.5) and not is_better(0.5, 0.5)


def test_predictions_from_logits():
    assert predictions_from_logits(get_task("mnli"), np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])).tolist() == [1, 0]
    assert predictions_from_logits(get_task("stsb"), np.array([[2.5], [0.5]])).tolist() == [2.5, 0.5]
    with pytest.raises(ValueError, match=r"must have shape \(examples, 2\)"):
        predictions_from_logits(get_task("sst2"), np.zeros((3, 3)))


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        compute_metrics(get_task("sst2"), np.array([1, 0]), np.array([1]))
