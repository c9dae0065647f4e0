"""Backbone and classifier: harness, dropping equals masking end to end, padding independence, errors."""

import os

import keras
import numpy as np
import pytest

from ltp_tf import (
    KeptTokenLogger,
    SoftToHardSwitch,
    TokenPruningBackbone,
    TokenPruningClassifier,
    TokenPruningConfig,
    set_masking_mode,
)

VOCAB, SEQ = 60, 12


def _backbone(prune_mode="absolute_threshold", masking_mode="hard", drop_tokens=False, threshold=0.03, **kwargs):
    config = TokenPruningConfig(prune_mode=prune_mode, masking_mode=masking_mode, final_token_threshold=threshold,
                                token_keep_rate=0.4)
    return TokenPruningBackbone(vocabulary_size=VOCAB, num_layers=4, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                max_sequence_length=32, dropout=kwargs.pop("dropout", 0.0), pruning_config=config,
                                drop_tokens=drop_tokens, **kwargs)


def _inputs(seed=0, batch=4, seq=SEQ):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, seq + 1, size=batch)
    lengths[0] = seq
    mask = np.arange(seq)[None, :] < lengths[:, None]
    return {"token_ids": np.where(mask, rng.integers(1, VOCAB, size=(batch, seq)), 0).astype("int32"),
            "segment_ids": np.zeros((batch, seq), "int32"), "padding_mask": mask}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("prune_mode", ["absolute_threshold", "topk"])
def test_dropping_equals_masking_end_to_end(prune_mode):
    inputs = _inputs(1)
    masked = _backbone(prune_mode)
    masked_out = masked(inputs)
    dropped = _backbone(prune_mode, drop_tokens=True)
    dropped(inputs)
    dropped.set_weights(masked.get_weights())
    dropped_out = dropped(inputs)
    np.testing.assert_allclose(_np(dropped_out["pooled_output"]), _np(masked_out["pooled_output"]), atol=1e-5)
    np.testing.assert_array_equal(_np(dropped_out["kept_tokens"]), _np(masked_out["kept_tokens"]))
    assert _np(dropped_out["sequence_output"]).shape[1] < SEQ
    # Every surviving output sits at its original position in the masked run.
    live = _np(dropped_out["token_mask"])
    positions = _np(dropped_out["kept_positions"])
    for b in range(len(live)):
        np.testing.assert_allclose(_np(dropped_out["sequence_output"])[b][live[b]],
                                   _np(masked_out["sequence_output"])[b][positions[b][live[b]]], atol=1e-5)
        np.testing.assert_array_equal(np.flatnonzero(_np(masked_out["token_mask"])[b]), positions[b][live[b]])


def test_outputs_do_not_depend_on_batch_padding():
    backbone = _backbone()
    inputs = _inputs(2, batch=1, seq=6)
    alone = backbone(inputs)
    padded = {k: np.pad(v, ((0, 0), (0, 10))) for k, v in inputs.items()}
    other = _inputs(3, batch=1, seq=16)
    batch = {k: np.concatenate([padded[k], other[k]]) for k in inputs}
    together = backbone(batch)
    np.testing.assert_allclose(_np(together["pooled_output"])[:1], _np(alone["pooled_output"]), atol=1e-5)
    np.testing.assert_array_equal(_np(together["kept_tokens"])[:1], _np(alone["kept_tokens"]))
    for a, b in zip(alone["token_scores"], together["token_scores"]):
        np.testing.assert_allclose(_np(b)[0, :6], _np(a)[0], rtol=1e-4, atol=1e-7)


def test_kept_tokens_fall_and_respect_cls():
    out = _backbone(threshold=0.2)(_inputs(4))
    kept = _np(out["kept_tokens"])
    assert np.all(np.diff(kept, axis=1) <= 0)
    assert np.all(kept[:, -1] >= 1)
    np.testing.assert_array_equal(kept[:, 0], _np(out["sequence_lengths"]))  # layer 0 never prunes


def test_classifier_fit_save_and_load(tmp_path):
    backbone = _backbone(masking_mode="soft", dropout=0.1)
    model = TokenPruningClassifier(backbone, num_classes=3)
    inputs = _inputs(5, batch=8)
    labels = np.arange(8) % 3
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(inputs, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = os.path.join(tmp_path, "classifier.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(restored(inputs)), _np(model(inputs)), atol=1e-5)
    assert restored.backbone.pruning_config == backbone.pruning_config
    assert restored.get_config()["num_classes"] == 3


def test_classifier_inside_user_functional_model():
    backbone = _backbone()
    classifier = TokenPruningClassifier(backbone, num_classes=1)
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")
    score = classifier({"token_ids": token_ids, "padding_mask": padding_mask})
    user_model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask},
                             keras.layers.Activation("sigmoid")(score))
    inputs = _inputs(6)
    out = _np(user_model({"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}))
    assert out.shape == (4, 1) and np.all((out > 0) & (out < 1))


def test_soft_to_hard_switch_freezes_thresholds_mid_training():
    backbone = _backbone(masking_mode="soft")
    model = TokenPruningClassifier(backbone, num_classes=2)
    inputs = _inputs(7, batch=8)
    labels = np.arange(8) % 2
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logger = KeptTokenLogger(inputs)
    switch = SoftToHardSwitch(epoch=1)
    history = model.fit(inputs, labels, batch_size=4, epochs=1, verbose=0, callbacks=[switch, logger])
    assert not switch.switched and "kept_ratio/layer_3" in history.history
    learned = [float(_np(b.threshold)) for b in backbone.transformer_layers[1:]]
    assert any(float(_np(b.threshold_delta)) != 0.0 for b in backbone.transformer_layers[1:]), \
        "thresholds should move in soft mode"
    model.fit(inputs, labels, batch_size=4, epochs=2, initial_epoch=1, verbose=0, callbacks=[switch, logger])
    assert switch.switched
    assert all(b.pruning_config.masking_mode == "hard" for b in backbone.transformer_layers)
    assert backbone.pruning_config.masking_mode == "hard"
    np.testing.assert_allclose([float(_np(b.frozen_threshold)) for b in backbone.transformer_layers[1:]], learned,
                               rtol=1e-6)
    np.testing.assert_allclose([float(_np(b.threshold)) for b in backbone.transformer_layers[1:]], learned, rtol=1e-6)
    assert len(logger.history) == 2 and all(0 < r <= 1 for r in logger.history[-1])


def test_set_masking_mode_needs_pruning_blocks():
    with pytest.raises(ValueError, match="has no TokenPruningEncoderBlock"):
        set_masking_mode(keras.Sequential([keras.layers.Dense(2)]), "hard")


def test_switch_arguments_are_validated():
    with pytest.raises(ValueError, match="Set exactly one of `epoch` and `step`"):
        SoftToHardSwitch()
    with pytest.raises(ValueError, match="`step` must be an integer >= 0"):
        SoftToHardSwitch(step=-1)


@pytest.mark.parametrize("inputs, message", [
    ({"token_ids": np.zeros((2, 40), "int32")}, "more than max_sequence_length=32"),
    ({"token_ids": np.zeros((2, 3, 4), "int32")}, "`token_ids` must have rank 2"),
    ({"token_ids": np.zeros((0, 5), "int32")}, "empty batch"),
    ({"token_ids": np.zeros((2, 5), "int32"), "padding_mask": np.ones((2, 4), bool)}, "`padding_mask` must have the shape"),
    ({"segment_ids": np.zeros((2, 5), "int32")}, "must be a dict with `token_ids`"),
])
def test_bad_inputs(inputs, message):
    with pytest.raises(ValueError, match=message):
        _backbone()(inputs)


def test_classifier_arguments_are_validated():
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 1"):
        TokenPruningClassifier(_backbone(), num_classes=0)
    with pytest.raises(ValueError, match="`backbone` must be a TokenPruningBackbone"):
        TokenPruningClassifier(keras.layers.Dense(3), num_classes=2)
