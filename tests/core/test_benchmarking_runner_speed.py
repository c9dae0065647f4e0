"""`ltp_tf.benchmarking.runner_speed`: the pruned model and its dense twin timed in turn, and the arithmetic of
latency, throughput and speedup (a fake clock makes every pruned call take 1 s and every dense call 3 s)."""

import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.benchmarking import runner_speed, timing


def _model():
    backbone = TokenPruningBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    max_sequence_length=16, dropout=0.0,
                                    pruning_config=TokenPruningConfig(prune_mode="absolute_threshold",
                                                                      final_token_threshold=0.1))
    model = TokenPruningClassifier(backbone, 2, dropout=0.0)
    model(_features(1))  # a runner needs a built model
    return model


def _features(n, seq=8, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.arange(seq)[None, :] < rng.integers(3, seq + 1, size=n)[:, None]
    return {"token_ids": np.where(mask, rng.integers(1, 50, size=(n, seq)), 0).astype("int32"),
            "segment_ids": np.zeros((n, seq), "int32"), "padding_mask": mask}


def _ticks():
    """perf_counter readings: calls alternate pruned (1 s), dense (3 s), as `measure` orders them."""
    t = 0.0
    while True:
        yield t
        t += 1.0
        yield t
        yield t
        t += 3.0
        yield t


def test_measure_times_pruned_and_dense_in_turn(monkeypatch):
    monkeypatch.setattr(timing, "CALLS_PER_TURN", 1)  # turns of one call: the fake clock's alternation
    ticks = _ticks()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    speed = runner_speed.measure(_model(), _features(5), latency_examples=3, batch_sizes=(2, 4))
    assert speed["latency_ms_pruned"] == pytest.approx(1000.0) and speed["latency_ms_dense"] == pytest.approx(3000.0)
    assert speed["speedup_batch1"] == pytest.approx(3.0)
    # 5 examples in batches of 2: three calls each, 3 s pruned and 9 s dense.
    assert speed["throughput_batch2_pruned"] == pytest.approx(5 / 3) and speed["throughput_batch2_dense"] == pytest.approx(5 / 9)
    assert speed["speedup_batch2"] == pytest.approx(3.0)
    assert speed["throughput_batch4_pruned"] == pytest.approx(5 / 2) and speed["speedup_batch4"] == pytest.approx(3.0)


def test_measure_with_calibration_runs_on_a_real_clock():
    speed = runner_speed.measure(_model(), _features(6), latency_examples=2, calibration=_features(4, seed=1),
                                 batch_sizes=(3,))
    assert all(np.isfinite(value) and value > 0 for value in speed.values())
    assert set(speed) == {"latency_ms_pruned", "latency_ms_dense", "speedup_batch1", "throughput_batch3_pruned",
                          "throughput_batch3_dense", "speedup_batch3"}


@pytest.mark.parametrize("kwargs, message", [
    ({"latency_examples": 0}, r"`latency_examples` must be an integer >= 1. Received: latency_examples=0"),
    ({"batch_sizes": (32, 0)}, r"`batch_sizes` must be integers >= 1. Received: batch_sizes=\(32, 0\)"),
    ({"batch_sizes": ()}, r"`batch_sizes` must be integers >= 1. Received: batch_sizes=\(\)"),
])
def test_measure_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner_speed.measure(_model(), _features(2), **{"latency_examples": 1, **kwargs})
