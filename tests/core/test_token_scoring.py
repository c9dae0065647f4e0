"""NumPy references for the scoring and keep rules, on random inputs."""

import math

import keras
import numpy as np
import pytest

from ltp_tf.layers import token_scoring


def _random_probs(rng, batch, heads, seq, live):
    logits = rng.normal(size=(batch, heads, seq, seq))
    logits = np.where(live[:, None, None, :], logits, -1e9)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def _random_live(rng, batch, seq):
    lengths = rng.integers(2, seq + 1, size=batch)
    return np.arange(seq)[None, :] < lengths[:, None]


@pytest.mark.parametrize("scoring_mode", ["mean", "length_normalized"])
def test_token_importance_matches_numpy(scoring_mode):
    rng = np.random.default_rng(0)
    live = _random_live(rng, 4, 9)
    probs = _random_probs(rng, 4, 3, 9, live)
    got = keras.ops.convert_to_numpy(token_scoring.token_importance(probs, live, scoring_mode, 128))
    received = (probs * live[:, None, :, None]).sum(axis=(1, 2))
    denominator = 3 * (128 if scoring_mode == "mean" else live.sum(1, keepdims=True))
    np.testing.assert_allclose(got, received / denominator, rtol=1e-5, atol=1e-8)


def test_scores_do_not_depend_on_batch_padding():
    rng = np.random.default_rng(1)
    live = np.ones((1, 6), bool)
    probs = _random_probs(rng, 1, 2, 6, live)
    padded_probs = np.zeros((1, 2, 15, 15), np.float32)
    padded_probs[:, :, :6, :6] = probs
    padded_probs[:, :, 6:, :6] = 1.0 / 6  # padding queries attend somewhere; they must not count
    padded_live = np.arange(15)[None, :] < 6
    short = keras.ops.convert_to_numpy(token_scoring.token_importance(probs, live))
    long = keras.ops.convert_to_numpy(token_scoring.token_importance(padded_probs, padded_live))
    np.testing.assert_allclose(long[:, :6], short, rtol=1e-6)
    assert np.all(long[:, 6:] == 0)


def test_mean_scale_is_ltp_scale():
    # Uniform attention over n live tokens: every token receives n * (1/n) / 128 = 1/128 per head.
    n = 10
    probs = np.full((1, 4, n, n), 1.0 / n, np.float32)
    scores = keras.ops.convert_to_numpy(token_scoring.token_importance(probs, np.ones((1, n), bool)))
    np.testing.assert_allclose(scores, 1.0 / 128, rtol=1e-6)


@pytest.mark.parametrize("num_layers, rate", [(12, 0.5), (6, 0.3), (24, -0.2), (4, 0.0)])
def test_topk_keep_rates_match_ltp_schedule(num_layers, rate):
    start = max(3, math.ceil(0.15 * num_layers))
    rates = token_scoring.topk_keep_rates(num_layers, rate)
    assert rates[:start] == [1.0] * start
    for i in range(start, num_layers):
        expected = max(0.01, 1 + (rate - 1) * (i - start + 1) / (num_layers - start))
        assert rates[i] == pytest.approx(expected)
    assert rates[-1] == pytest.approx(max(0.01, rate))
    if num_layers == 12:  # LTP's own formula for 12 layers
        assert rates[5] == pytest.approx(1 + (rate - 1) * (5 - 2) / (12 - 3))


def test_initial_thresholds():
    assert [token_scoring.initial_threshold(i, 4, 0.02) for i in range(4)] == pytest.approx([0, 0.005, 0.01, 0.015])


def test_topk_keep_mask_matches_numpy():
    rng = np.random.default_rng(2)
    live = _random_live(rng, 6, 12)
    scores = rng.random((6, 12)).astype(np.float32)
    counts = np.minimum(rng.integers(1, 8, size=6), live.sum(1)).astype(np.int32)
    got = keras.ops.convert_to_numpy(token_scoring.topk_keep_mask(scores, live, counts))
    for b in range(6):
        ranked = np.where(live[b], scores[b], -1.0)
        ranked[0] = 2.0
        expected = np.zeros(12, bool)
        expected[np.argsort(-ranked, kind="stable")[:counts[b]]] = True
        np.testing.assert_array_equal(got[b], expected & live[b])
        assert got[b, 0]


def test_threshold_and_soft_masks_match_numpy():
    rng = np.random.default_rng(3)
    live = _random_live(rng, 5, 10)
    scores = (rng.random((5, 10)) * 0.02).astype(np.float32)
    hard = keras.ops.convert_to_numpy(token_scoring.threshold_keep_mask(scores, live, 0.01))
    expected = live & (scores >= 0.01)
    expected[:, 0] = live[:, 0]
    np.testing.assert_array_equal(hard, expected)
    soft = keras.ops.convert_to_numpy(token_scoring.soft_keep_mask(scores, live, 0.01, 1e-3))
    expected_soft = live / (1 + np.exp(-(scores - 0.01) / 1e-3))
    expected_soft[:, 0] = 1.0
    np.testing.assert_allclose(soft, expected_soft, rtol=1e-5, atol=1e-6)


def test_threshold_floor_keeps_ltp_minimum():
    live = np.ones((1, 3), bool)
    scores = np.array([[0.0, 5e-6, 2e-5]], np.float32)
    keep = keras.ops.convert_to_numpy(token_scoring.threshold_keep_mask(scores, live, 0.0))
    np.testing.assert_array_equal(keep, [[True, False, True]])


def test_compact_order_puts_kept_first_in_order():
    keep = np.array([[True, False, True, False, True], [True, True, False, False, False]])
    order = keras.ops.convert_to_numpy(token_scoring.compact_order(keep))
    np.testing.assert_array_equal(order, [[0, 2, 4, 1, 3], [0, 1, 2, 3, 4]])


def test_masked_mean_ignores_padding():
    values = np.array([[1.0, 0.5, 9.0]], np.float32)
    live = np.array([[True, True, False]])
    assert float(keras.ops.convert_to_numpy(token_scoring.masked_mean(values, live))) == pytest.approx(0.75)


def test_topk_keep_counts_round_half_to_even_like_ltp():
    """LTP keeps `torch.round(length * rate)` tokens (half to even, float32 product); ltp_tf keeps at least 1."""
    rng = np.random.default_rng(4)
    lengths = np.concatenate([rng.integers(1, 129, size=200), [1, 2, 3, 5, 7, 25]]).astype(np.int32)
    for rate in [0.01, 0.3, 0.5, 0.55, 0.9, *rng.random(5)]:
        got = keras.ops.convert_to_numpy(token_scoring.topk_keep_counts(lengths, rate))
        product = lengths.astype(np.float32) * np.float32(rate)
        np.testing.assert_array_equal(got, np.maximum(np.round(product), 1).astype(np.int32))  # np.round: half to even
    # Where rounding and ceil differ: at 0.3 a 2-token sentence keeps 1 (0.6), 5 tokens keep 2 (1.5);
    # at 0.5 halves go to the even neighbour (2.5 -> 2, 3.5 -> 4, 1.5 -> 2); a count of 0 keeps [CLS].
    got = keras.ops.convert_to_numpy(token_scoring.topk_keep_counts(np.array([2, 5, 7, 1]), 0.3))
    np.testing.assert_array_equal(got, [1, 2, 2, 1])
    got = keras.ops.convert_to_numpy(token_scoring.topk_keep_counts(np.array([5, 7, 3]), 0.5))
    np.testing.assert_array_equal(got, [2, 4, 2])
