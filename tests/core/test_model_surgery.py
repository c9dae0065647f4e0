"""Model surgery (`ltp_tf.models.surgery`): the same weights under other settings, weights copied by path.

Backend-neutral: runs under TensorFlow and JAX (`KERAS_BACKEND=jax`).
"""

import re

import keras
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.models.surgery import copy_weights_by_path, with_settings, without_token_pruning

SOFT = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft", final_token_threshold=0.3,
                          score_reference_length=8)
HARD = SOFT.replace(masking_mode="hard")
TOPK = TokenPruningConfig(prune_mode="topk", token_keep_rate=0.4)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _backbone(config=SOFT, num_layers=3, intermediate_dim=16):
    # Named explicitly: paths include the backbone's name, which Keras would number (`..._1`) per instance.
    return TokenPruningBackbone(vocabulary_size=30, num_layers=num_layers, num_heads=2, hidden_dim=8,
                                intermediate_dim=intermediate_dim, max_sequence_length=16, pruning_config=config,
                                name="token_pruning_backbone")


def _classifier(config=SOFT, num_layers=3, intermediate_dim=16, seed=0, name=None):
    """A built classifier whose weights, thresholds included, are all random (none at its initial value)."""
    model = TokenPruningClassifier(_backbone(config, num_layers, intermediate_dim), num_classes=3, name=name)
    model.build()
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.path.endswith("threshold_delta"):
            value = rng.uniform(-0.05, 0.05)
        elif variable.path.endswith("frozen_threshold"):
            value = rng.uniform(0.1, 0.12)
        elif variable.path.endswith(("query/kernel", "key/kernel")):
            value = rng.normal(scale=2.0, size=variable.shape)  # peaked attention: scores far from uniform
        else:
            value = rng.normal(scale=0.3, size=variable.shape)
        variable.assign(np.asarray(value, "float32"))
    return model


def _weights(model):
    """Weight values by path from the classifier's sublayer down (a deserialized backbone's paths lack the
    classifier's name, a backbone built by the classifier's `build` has it)."""
    return {re.sub(r"^.*?(?=(token_pruning_backbone|logits)/)", "", variable.path): _np(variable)
            for variable in model.weights}


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    lengths = np.array([12, 5, 9, 16])
    mask = np.arange(16)[None, :] < lengths[:, None]
    return {"token_ids": (rng.integers(1, 30, size=mask.shape) * mask).astype("int32"),
            "segment_ids": np.zeros(mask.shape, "int32"), "padding_mask": mask}


def _without(config, keys):
    return {key: value for key, value in config.items() if key not in keys}


def test_with_settings_keeps_every_weight_and_changes_only_what_was_asked():
    model = _classifier()
    clone = with_settings(model, pruning_config=TOPK, drop_tokens=True, threshold_lr_scale=3.0)
    assert clone is not model and clone.built and not clone.compiled
    expected = _weights(model)
    got = _weights(clone)
    assert sorted(got) == sorted(expected)
    for path, value in expected.items():
        np.testing.assert_array_equal(got[path], value, err_msg=path)
    changed = {"pruning_config", "drop_tokens", "threshold_lr_scale"}
    old, new = model.get_config(), clone.get_config()
    assert _without(new, {"backbone"}) == _without(old, {"backbone"})
    assert _without(new["backbone"]["config"], changed) == _without(old["backbone"]["config"], changed)
    assert new["backbone"]["config"]["pruning_config"] == TOPK.to_dict()
    assert clone.backbone.drop_tokens and all(block.drop_tokens for block in clone.backbone.transformer_layers)
    assert all(block.threshold_lr_scale == 3.0 for block in clone.backbone.transformer_layers)
    # The source is untouched.
    assert model.backbone.pruning_config == SOFT and not model.backbone.drop_tokens


def test_with_settings_without_changes_keeps_thresholds_and_outputs():
    model = _classifier(HARD)
    clone = with_settings(model)
    assert clone.get_config() == model.get_config()
    for a, b in zip(model.backbone.transformer_layers, clone.backbone.transformer_layers):
        assert float(_np(a.threshold)) == float(_np(b.threshold))
    x = _inputs()
    np.testing.assert_array_equal(_np(clone(x)), _np(model(x)))


def test_dense_twin_and_back_gives_identical_outputs():
    model = _classifier(HARD, seed=3)
    x = _inputs()
    outputs = model.backbone(x)
    kept = _np(outputs["kept_tokens"])
    assert (kept[:, -1] < x["padding_mask"].sum(axis=1)).any(), "the test model should prune"

    twin = without_token_pruning(model)
    assert twin.backbone.pruning_config == HARD.replace(prune_mode="none")
    assert not twin.backbone.drop_tokens and twin.name == model.name
    dense_kept = _np(twin.backbone(x)["kept_tokens"])
    np.testing.assert_array_equal(dense_kept, np.repeat(x["padding_mask"].sum(axis=1)[:, None], 3, axis=1))

    back = with_settings(twin, pruning_config=HARD)
    assert back.get_config() == model.get_config()
    np.testing.assert_array_equal(_np(back(x)), _np(model(x)))
    np.testing.assert_array_equal(_np(back.backbone(x)["kept_tokens"]), kept)


def test_without_token_pruning_of_a_soft_model_masks_hard_and_can_be_renamed():
    model = _classifier(SOFT)
    twin = without_token_pruning(model, name="teacher")
    assert twin.name == "teacher"
    assert twin.backbone.pruning_config == SOFT.replace(prune_mode="none", masking_mode="hard")


def test_with_settings_to_topk_with_token_removal_equals_topk_masking():
    model = _classifier(HARD)
    x = _inputs()
    masked = with_settings(model, pruning_config=TOPK)
    dropped = with_settings(masked, drop_tokens=True)
    np.testing.assert_allclose(_np(dropped(x)), _np(masked(x)), atol=1e-5)


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_round_trip_keeps_float32_weights(dtype):
    model = _classifier(HARD)
    mixed = with_settings(model, dtype=dtype)
    assert mixed.dtype_policy.name == dtype and mixed.backbone.dtype_policy.name == dtype
    assert all(block.dtype_policy.name == dtype for block in mixed.backbone.transformer_layers)
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in mixed.weights)
    assert keras.backend.standardize_dtype(mixed(_inputs()).dtype) == "float32"  # float32 logits
    stored = with_settings(mixed, dtype="float32")  # what a checkpoint stores after mixed-precision training
    assert stored.dtype_policy.name == "float32"
    assert stored.get_config() == model.get_config()
    x = _inputs()
    np.testing.assert_array_equal(_np(stored(x)), _np(model(x)))


def test_pure_half_precision_casts_the_weights():
    model = _classifier(HARD)
    half = with_settings(model, dtype="bfloat16")
    weights = _weights(half)
    assert keras.backend.standardize_dtype(half.backbone.token_embedding.embeddings.dtype) == "bfloat16"
    for path, value in _weights(model).items():
        np.testing.assert_allclose(weights[path].astype("float32"), value, rtol=1e-2, atol=1e-6, err_msg=path)


def test_dropout_setting_changes_backbone_and_head():
    model = _classifier(HARD)
    clone = with_settings(model, dropout=0.2)
    assert clone.dropout == 0.2 and clone.backbone.dropout == 0.2
    assert all(block.dropout == 0.2 for block in clone.backbone.transformer_layers)
    np.testing.assert_array_equal(_np(clone(_inputs())), _np(model(_inputs())))  # dropout is off at inference


def test_with_settings_errors():
    model = _classifier()
    with pytest.raises(ValueError, match=r"`model` must be a TokenPruningClassifier\. Received: model of type "
                                         r"TokenPruningBackbone"):
        with_settings(model.backbone, drop_tokens=True)
    with pytest.raises(ValueError, match=r"`pruning_config` must be a TokenPruningConfig\. Received: "
                                         r"pruning_config of type dict"):
        with_settings(model, pruning_config=TOPK.to_dict())
    unbuilt = TokenPruningClassifier(_backbone(), num_classes=3)
    with pytest.raises(ValueError, match="`model` must be built"):
        with_settings(unbuilt)


def test_copy_weights_by_path_between_differently_named_models():
    source = _classifier(seed=3, name="source_model")
    target = _classifier(TOPK, seed=4, name="target_model")
    copy_weights_by_path(source, target)
    assert _weights(target).keys() == _weights(source).keys()
    for path, value in _weights(source).items():
        np.testing.assert_array_equal(_weights(target)[path], value, err_msg=path)


def _assert_unchanged_after(error, target, copy):
    before = _weights(target)
    with pytest.raises(ValueError, match=error):
        copy()
    for path, value in _weights(target).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)


def test_copy_weights_by_path_refuses_a_missing_path_before_writing_anything():
    source, target = _classifier(num_layers=3), _classifier(num_layers=2, seed=5)
    _assert_unchanged_after(r"`target` must have a weight at every path of `source`'s weights\. Received: no target "
                            r"weight at \['token_pruning_backbone/transformer_layer_2/", target,
                            lambda: copy_weights_by_path(source, target))


def test_copy_weights_by_path_refuses_a_shape_mismatch_before_writing_anything():
    source, target = _classifier(intermediate_dim=16), _classifier(intermediate_dim=24, seed=5)
    _assert_unchanged_after(r"The target weight '.*feedforward_intermediate_dense/(kernel|bias)' must have the shape "
                            r"of the source's, \(\d+(, \d+)?\)\. Received: shape=\(\d+(, \d+)?\)", target,
                            lambda: copy_weights_by_path(source, target))


def test_copy_weights_by_path_refuses_target_weights_left_unset_unless_listed():
    source, target = _classifier(num_layers=2), _classifier(num_layers=3, seed=5)
    _assert_unchanged_after(r"`source` must have a value for every weight of `target`\. Received: no source weight "
                            r"at \['token_pruning_backbone/transformer_layer_2/", target,
                            lambda: copy_weights_by_path(source, target))
    copy_weights_by_path(source, target, target_only=("transformer_layer_2",))
    copied = _weights(target)
    for path, value in _weights(source).items():
        np.testing.assert_array_equal(copied[path], value, err_msg=path)


def test_copy_weights_by_path_matches_models_built_either_way():
    """A backbone built inside its classifier (paths `<classifier>/token_pruning_backbone/...`) into one built on
    its own (`token_pruning_backbone/...`)."""
    source = _classifier(seed=6).backbone
    target = _backbone()
    target.build()
    assert source.weights[0].path != target.weights[0].path
    copy_weights_by_path(source, target)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(_np(b), _np(a), err_msg=b.path)


def test_copy_weights_by_path_with_a_path_key():
    """`path_key` maps both models' full paths to the compared ones: here it hides the backbones' names."""
    source = _classifier(seed=6)
    target = TokenPruningClassifier(TokenPruningBackbone.from_config({**_backbone().get_config(), "name": "encoder"}),
                                    num_classes=3)
    target.build()
    with pytest.raises(ValueError, match="`target` must have a weight at every path"):
        copy_weights_by_path(source, target)
    # `<classifier>/token_pruning_backbone/x` and `<classifier>/encoder/x` -> `x`; `<classifier>/logits/kernel` -> `logits/kernel`.
    copy_weights_by_path(source, target,
                         path_key=lambda path: re.sub(r"^[^/]+/((token_pruning_backbone|encoder)/)?", "", path))
    x = _inputs()
    np.testing.assert_array_equal(_np(target(x)), _np(source(x)))
