"""The encoder block: layer harness, NumPy reference forward pass, pruning behaviour, errors."""

import keras
import numpy as np
import pytest
from scipy.special import erf

from ltp_tf.layers import TokenPruningEncoderBlock
from ltp_tf.token_pruning_config import TokenPruningConfig
from tests.layer_harness import run_layer_test

HIDDEN, HEADS, FFN, SEQ, BATCH = 16, 4, 32, 9, 3


def _inputs(seed=0, batch=BATCH, seq=SEQ):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(batch, seq, HIDDEN)).astype(np.float32)
    lengths = rng.integers(3, seq + 1, size=batch)
    lengths[0] = seq
    live = np.arange(seq)[None, :] < lengths[:, None]
    return hidden, live


def _block(prune_mode="absolute_threshold", masking_mode="hard", layer_index=2, num_layers=4, **kwargs):
    config = TokenPruningConfig(prune_mode=prune_mode, masking_mode=masking_mode,
                                final_token_threshold=kwargs.pop("final_token_threshold", 0.04),
                                token_keep_rate=kwargs.pop("token_keep_rate", 0.5))
    return TokenPruningEncoderBlock(intermediate_dim=FFN, num_heads=HEADS, layer_index=layer_index,
                                    num_layers=num_layers, pruning_config=config, **kwargs)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_layer_harness():
    hidden, live = _inputs()
    run_layer_test(
        TokenPruningEncoderBlock,
        dict(intermediate_dim=FFN, num_heads=HEADS, layer_index=2, num_layers=4, dropout=0.1,
             pruning_config=TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.04).to_dict()),
        (hidden, live),
        lambda: (keras.Input((None, HIDDEN)), keras.Input((None,), dtype="bool")),
        lambda outputs: outputs["hidden_states"],
        float32_outputs=("token_scores", "keep_mask"),  # documented: thresholds need float32
    )


@pytest.mark.parametrize("training", [False, True])
def test_scores_and_keep_mask_stay_float32_under_mixed_precision(training):
    """Thresholds go down to 1e-5 (subnormal in float16): scores and masks are float32 by design."""
    hidden, live = _inputs(10)
    block = _block(masking_mode="soft", final_token_threshold=0.04, dtype="mixed_float16")
    outputs = block(hidden, live, training=training)
    assert keras.backend.standardize_dtype(outputs["hidden_states"].dtype) == "float16"
    for name in ("token_scores", "keep_mask"):
        assert keras.backend.standardize_dtype(outputs[name].dtype) == "float32", name
    reference = _block(masking_mode="soft", final_token_threshold=0.04)
    reference(hidden, live)
    reference.set_weights(block.get_weights())
    expected = reference(hidden, live, training=training)
    np.testing.assert_allclose(_np(outputs["token_scores"]), _np(expected["token_scores"]), rtol=1e-2, atol=1e-5)
    if not training:  # hard keep decisions match the float32 block's (no score is this close to the threshold)
        np.testing.assert_array_equal(_np(outputs["keep_mask"]), _np(expected["keep_mask"]))


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _reference_block(block, hidden, live, threshold):
    """NumPy post-LN BERT block with LTP's score and hard threshold rule."""
    w = {v.path.split("/", 1)[1]: _np(v) for v in block.weights}
    att = "self_attention_layer"
    q = np.einsum("bsd,dhk->bshk", hidden, w[f"{att}/query/kernel"]) + w[f"{att}/query/bias"]
    k = np.einsum("bsd,dhk->bshk", hidden, w[f"{att}/key/kernel"]) + w[f"{att}/key/bias"]
    v = np.einsum("bsd,dhk->bshk", hidden, w[f"{att}/value/kernel"]) + w[f"{att}/value/bias"]
    logits = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(HIDDEN // HEADS)
    logits = np.where(live[:, None, None, :], logits, -1e30)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = np.einsum("bhqs,bshk->bqhk", probs, v)
    attention = np.einsum("bqhk,hkd->bqd", context, w[f"{att}/attention_output/kernel"]) + w[f"{att}/attention_output/bias"]
    x1 = _layer_norm(hidden + attention, w["self_attention_layer_norm/gamma"], w["self_attention_layer_norm/beta"])
    inner = x1 @ w["feedforward_intermediate_dense/kernel"] + w["feedforward_intermediate_dense/bias"]
    inner = 0.5 * inner * (1 + erf(inner / np.sqrt(2)))
    ff = inner @ w["feedforward_output_dense/kernel"] + w["feedforward_output_dense/bias"]
    out = _layer_norm(x1 + ff, w["feedforward_layer_norm/gamma"], w["feedforward_layer_norm/beta"])
    scores = (probs * live[:, None, :, None]).sum(axis=(1, 2)) / (HEADS * 128)
    keep = live & (scores >= max(threshold, 1e-5))
    keep[:, 0] = live[:, 0]
    return out, scores, keep


def test_matches_numpy_reference():
    hidden, live = _inputs(1)
    block = _block(final_token_threshold=0.03)
    outputs = block(hidden, live)
    expected, scores, keep = _reference_block(block, hidden, live, threshold=0.03 * 2 / 4)
    np.testing.assert_allclose(_np(outputs["token_scores"]), scores, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(_np(outputs["token_mask"]), keep)
    got = _np(outputs["hidden_states"])
    np.testing.assert_allclose(got[live], expected[live], atol=1e-4)
    assert 0 < keep.sum() < live.sum(), "test should prune some but not all tokens"


@pytest.mark.parametrize("prune_mode", ["absolute_threshold", "topk"])
def test_public_steps_compose_to_the_hard_call(prune_mode):
    """attend -> score_tokens -> hard_keep_mask, feed_forward on the attention: what `call` returns (hard mode)."""
    hidden, live = _inputs(5)
    block = _block(prune_mode, layer_index=3, final_token_threshold=0.02)
    outputs = block(hidden, live)
    attention, probs = block.attend(hidden, live)
    assert tuple(attention.shape) == hidden.shape and tuple(probs.shape) == (BATCH, HEADS, SEQ, SEQ)
    scores = block.score_tokens(probs, live)
    keep = block.hard_keep_mask(scores, live, live.sum(axis=1).astype("int32"))
    np.testing.assert_array_equal(_np(scores), _np(outputs["token_scores"]))
    np.testing.assert_array_equal(_np(keep), _np(outputs["token_mask"]))
    assert 0 < _np(keep).sum() < live.sum(), "test should prune some but not all tokens"
    np.testing.assert_array_equal(_np(block.feed_forward(hidden, attention)), _np(outputs["hidden_states"]))


@pytest.mark.parametrize("prune_mode", ["absolute_threshold", "topk"])
def test_dropping_equals_hard_masking(prune_mode):
    hidden, live = _inputs(2)
    live[1, 3:] = False  # a short row: it keeps fewer tokens than the longest kept row
    masked = _block(prune_mode, layer_index=3, final_token_threshold=0.01)
    dropped = _block(prune_mode, layer_index=3, final_token_threshold=0.01, drop_tokens=True)
    masked_out = masked(hidden, live)
    dropped(hidden, live)
    dropped.set_weights(masked.get_weights())
    dropped_out = dropped(hidden, live)
    keep = _np(masked_out["token_mask"])
    positions = _np(dropped_out["kept_positions"])
    dropped_live = _np(dropped_out["token_mask"])
    assert positions.shape[1] == keep.sum(1).max() < SEQ
    assert len(set(keep.sum(1))) > 1, "test should keep a different number of tokens per row"
    for b in range(BATCH):
        kept_positions = np.flatnonzero(keep[b])
        np.testing.assert_array_equal(positions[b][dropped_live[b]], kept_positions)
        np.testing.assert_allclose(_np(dropped_out["hidden_states"])[b][dropped_live[b]],
                                   _np(masked_out["hidden_states"])[b][kept_positions], atol=1e-5)
        # The feed-forward network ran on the kept tokens only (packed): the padded slots hold zeros.
        np.testing.assert_array_equal(_np(dropped_out["hidden_states"])[b][~dropped_live[b]], 0.0)
    assert not dropped_live.all(), "test should leave some slots padded"


def test_cls_is_never_pruned_and_padding_never_kept():
    hidden, live = _inputs(3)
    outputs = _block(final_token_threshold=0.99)(hidden, live)
    keep = _np(outputs["token_mask"])
    np.testing.assert_array_equal(keep[:, 0], True)
    assert keep[:, 1:].sum() == 0
    outputs = _block(final_token_threshold=0.0)(hidden, live)
    assert not np.any(_np(outputs["token_mask"]) & ~live)


def test_first_layer_never_prunes():
    hidden, live = _inputs(4)
    outputs = _block(layer_index=0, final_token_threshold=0.99)(hidden, live)
    np.testing.assert_array_equal(_np(outputs["token_mask"]), live)


def test_topk_keeps_schedule_count_of_sentence_length():
    hidden, _ = _inputs(5, batch=4)
    lengths = np.array([9, 5, 2, 1])  # at rate 0.5: 4.5 -> 4 and 2.5 -> 2 (half to even, as torch.round), 0.5 -> 1
    live = np.arange(SEQ)[None, :] < lengths[:, None]
    block = _block("topk", layer_index=3, num_layers=4, token_keep_rate=0.5)
    outputs = block(hidden, live)
    np.testing.assert_array_equal(_np(outputs["token_mask"]).sum(1), [4, 2, 1, 1])


def test_topk_per_layer_rates_replace_the_schedule():
    """`token_keep_rates` gives each layer its own rate: this layer keeps round(length * its rate) tokens, the
    highest-scoring ones, and a layer at rate 1 does not prune."""
    hidden, _ = _inputs(7, batch=4)
    lengths = np.array([9, 7, 4, 1])
    live = np.arange(SEQ)[None, :] < lengths[:, None]
    rates = (1.0, 1.0, 0.75, 0.3)
    blocks = [TokenPruningEncoderBlock(intermediate_dim=FFN, num_heads=HEADS, layer_index=i, num_layers=4,
                                       pruning_config=TokenPruningConfig(prune_mode="topk", token_keep_rates=rates))
              for i in (1, 2)]
    assert not blocks[0].prunes and blocks[1].prunes and blocks[1].topk_keep_rate == 0.75
    outputs = blocks[1](hidden, live)
    kept = _np(outputs["token_mask"])
    np.testing.assert_array_equal(kept.sum(1), np.maximum(1, np.round(lengths * 0.75)))  # 6.75, 5.25, 3, 0.75
    scores = _np(outputs["token_scores"])
    for row in range(4):  # the kept tokens are the best-scoring live ones, [CLS] always among them
        live_scores = np.where(live[row], scores[row], -np.inf)
        live_scores[0] = np.inf
        best = np.argsort(-live_scores, kind="stable")[:kept[row].sum()]
        np.testing.assert_array_equal(np.sort(best), np.flatnonzero(kept[row]))


def test_topk_per_layer_rates_must_match_the_layers():
    config = TokenPruningConfig(prune_mode="topk", token_keep_rates=(1.0, 0.5))
    with pytest.raises(ValueError, match="one rate per layer \\(4\\)"):
        TokenPruningEncoderBlock(intermediate_dim=FFN, num_heads=HEADS, layer_index=1, num_layers=4,
                                 pruning_config=config)
    with pytest.raises(ValueError, match="token_keep_rates"):
        TokenPruningConfig(prune_mode="topk", token_keep_rates=(1.0, 0.0, 0.5, 0.5))


def test_soft_training_with_drop_tokens_on_padded_rows():
    """Soft training removes nothing but padding: with drop_tokens it equals soft masking on live tokens."""
    hidden, live = _inputs(11)
    live[0, -2:] = False  # every row padded: the compacted width is below SEQ
    masked = _block(masking_mode="soft", layer_index=3, final_token_threshold=0.02)
    dropped = _block(masking_mode="soft", layer_index=3, final_token_threshold=0.02, drop_tokens=True)
    masked_out = masked(hidden, live, training=True)
    dropped(hidden, live)
    dropped.set_weights(masked.get_weights())
    dropped_out = dropped(hidden, live, training=True)
    width = live.sum(1).max()
    assert _np(dropped_out["hidden_states"]).shape == (BATCH, width, HIDDEN) and width < SEQ
    np.testing.assert_array_equal(_np(dropped_out["kept_positions"]), np.tile(np.arange(width), (BATCH, 1)))
    np.testing.assert_array_equal(_np(dropped_out["token_mask"]), live[:, :width])
    np.testing.assert_allclose(_np(dropped_out["keep_mask"]), _np(masked_out["keep_mask"]), atol=1e-6)
    got, expected = _np(dropped_out["hidden_states"]), _np(masked_out["hidden_states"])[:, :width]
    np.testing.assert_allclose(got[live[:, :width]], expected[live[:, :width]], atol=1e-5)
    assert float(_np(dropped.losses[0])) == pytest.approx(float(_np(masked.losses[0])), rel=1e-5)


def _soft_model(masking_mode):
    block = _block(masking_mode=masking_mode, final_token_threshold=0.02)
    hidden_in = keras.Input((SEQ, HIDDEN))
    live_in = keras.Input((SEQ,), dtype="bool")
    model = keras.Model([hidden_in, live_in], block(hidden_in, live_in)["hidden_states"])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model, block


def test_soft_mode_trains_threshold_and_adds_mask_loss():
    hidden, live = _inputs(6)
    model, block = _soft_model("soft")
    assert any(w is block.threshold_delta for w in model.trainable_weights)
    block(hidden, live, training=True)
    assert len(block.losses) == 1 and float(_np(block.losses[0])) > 0
    before = float(_np(block.threshold_delta))
    model.fit([hidden, live], np.zeros_like(hidden), epochs=2, batch_size=BATCH, verbose=0)
    assert float(_np(block.threshold_delta)) != before


def test_soft_mask_multiplies_output_only_in_training():
    hidden, live = _inputs(7)
    block = _block(masking_mode="soft", final_token_threshold=0.02, dropout=0.0)
    train_out = block(hidden, live, training=True)
    infer_out = block(hidden, live, training=False)
    soft = _np(train_out["keep_mask"])
    assert np.all((soft >= 0) & (soft <= 1))
    np.testing.assert_array_equal(_np(train_out["token_mask"]), live)  # soft mode removes nothing
    ratio = _np(train_out["hidden_states"]) / np.where(np.abs(_np(infer_out["hidden_states"])) > 1e-3,
                                                       _np(infer_out["hidden_states"]), np.nan)
    np.testing.assert_allclose(np.nanmean(ratio, axis=-1)[live], soft[live], atol=1e-3)
    assert set(np.unique(_np(infer_out["keep_mask"]))) <= {0.0, 1.0}  # inference prunes hard


def test_hard_mode_freezes_threshold():
    hidden, live = _inputs(8)
    model, block = _soft_model("hard")
    assert all(w is not block.threshold_delta for w in model.trainable_weights)
    before = float(_np(block.threshold_delta))
    model.fit([hidden, live], np.zeros_like(hidden), epochs=1, batch_size=BATCH, verbose=0)
    assert float(_np(block.threshold_delta)) == before


def test_set_masking_mode_toggles_trainability():
    block = _block(masking_mode="soft")
    block.build((None, None, HIDDEN))
    assert block.threshold_delta.trainable
    block.set_masking_mode("hard")
    assert not block.threshold_delta.trainable and block.pruning_config.masking_mode == "hard"


def test_threshold_lr_scale_scales_threshold():
    block = _block(masking_mode="soft", threshold_lr_scale=10.0, final_token_threshold=0.04)
    block.build((None, None, HIDDEN))
    block.threshold_delta.assign(0.001)
    assert float(_np(block.threshold)) == pytest.approx(0.02 + 0.01)
    block.set_masking_mode("hard")  # the learned value is frozen, and comes back on the way to soft
    assert float(_np(block.frozen_threshold)) == pytest.approx(0.03)
    block.threshold_delta.assign(0.5)
    assert float(_np(block.threshold)) == pytest.approx(0.03)
    block.set_masking_mode("soft")
    assert float(_np(block.threshold)) == pytest.approx(0.03)


@pytest.mark.parametrize("kwargs, message", [
    (dict(intermediate_dim=0, num_heads=2), "`intermediate_dim` must be an integer >= 1"),
    (dict(intermediate_dim=8, num_heads=2, layer_index=4, num_layers=4), "`layer_index` must be < num_layers"),
    (dict(intermediate_dim=8, num_heads=2, dropout=1.5), "`dropout` must be in \\[0, 1\\)"),
    (dict(intermediate_dim=8, num_heads=2, activation="nope"), "`activation` must be"),
    (dict(intermediate_dim=8, num_heads=2, pruning_config={"prune_mode": "bogus"}), "`prune_mode` must be one of"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenPruningEncoderBlock(**kwargs)


def test_bad_call_shapes():
    hidden, live = _inputs(9)
    block = _block()
    with pytest.raises(ValueError, match="`hidden_states` must have rank 3"):
        block(hidden[0], live)
    with pytest.raises(ValueError, match="`token_mask` must have shape"):
        block(hidden, live[:, :4])
    with pytest.raises(ValueError, match="divisible by `num_heads`"):
        TokenPruningEncoderBlock(intermediate_dim=8, num_heads=3)(hidden, live)
