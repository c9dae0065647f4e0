"""Distillation losses against NumPy, training through the distiller with pruning, and the recipe helper."""

import keras
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.sparsity import (Distiller, WeightPruningConfig, dense_teacher, find_plan, setup_weight_pruning,
                             sparsity_report)
from ltp_tf.sparsity.distillation import classifier_forward

VOCAB, SEQ = 60, 8


def _classifier(token_pruning=None, seed=0, drop_tokens=False):
    keras.utils.set_random_seed(seed)
    backbone = TokenPruningBackbone(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, max_sequence_length=16, dropout=0.0,
                                    pruning_config=token_pruning, drop_tokens=drop_tokens)
    model = TokenPruningClassifier(backbone, 2, dropout=0.0)
    model(_data(2)[0])
    return model


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, SEQ + 1, size=n)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(1, VOCAB, size=(n, SEQ)), 0).astype("int32")
    return {"token_ids": ids, "padding_mask": mask}, (ids[:, 1] % 2).astype("int32")


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _distill_loss(distiller, x):
    distiller(x, training=True)
    (loss,) = distiller.losses
    return float(_np(loss))


def test_classifier_forward_is_the_classifier_call():
    model = _classifier(TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.1))
    x, _ = _data(4)
    logits, outputs = classifier_forward(model, x, False)
    np.testing.assert_allclose(_np(logits), _np(model(x, training=False)), atol=1e-6)
    assert "sequence_output" in outputs and "token_mask" in outputs


@pytest.mark.parametrize("drop_tokens", [False, True])
def test_hidden_mse_matches_numpy_over_live_tokens(drop_tokens):
    token_pruning = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.15)
    student = _classifier(token_pruning, seed=1, drop_tokens=drop_tokens)
    teacher = _classifier(seed=2)
    x, _ = _data(4)
    distiller = Distiller(student, teacher, loss_weight=3.0, mode="hidden_mse")
    out = student.backbone(x, training=True)
    s, live, positions = _np(out["sequence_output"]), _np(out["token_mask"]), _np(out["kept_positions"])
    t = np.take_along_axis(_np(teacher.backbone(x, training=False)["sequence_output"]), positions[:, :, None], axis=1)
    assert live.sum() < x["padding_mask"].sum()  # tokens were pruned, so the mask matters
    expected = 3.0 * ((s - t) ** 2 * live[:, :, None]).sum() / (live.sum() * s.shape[-1])
    assert _distill_loss(distiller, x) == pytest.approx(expected, rel=1e-5)


def test_logits_kl_matches_numpy():
    student, teacher = _classifier(seed=3), _classifier(seed=4)
    rng = np.random.default_rng(0)
    for model in (student, teacher):  # logits of order 1, not ~0, so the KL is well above rounding
        model.output_dense.kernel.assign(rng.normal(size=(16, 2)).astype("float32"))
    x, _ = _data(6)
    distiller = Distiller(student, teacher, loss_weight=0.5, mode="logits_kl", temperature=2.0)
    s, t = _np(student(x)).astype("float64") / 2.0, _np(teacher(x)).astype("float64") / 2.0
    log_p = t - np.log(np.exp(t).sum(-1, keepdims=True))
    log_q = s - np.log(np.exp(s).sum(-1, keepdims=True))
    expected = 0.5 * 4.0 * (np.exp(log_p) * (log_p - log_q)).sum(-1).mean()
    # The loss is a float32 difference of order-1 log-probabilities (rounding ~1e-7 each), scaled by
    # weight * T^2 = 2, so it can sit a few 1e-7 from the float64 value; a wrong KL misses by far more.
    assert _distill_loss(distiller, x) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_distiller_errors():
    student = _classifier()
    with pytest.raises(ValueError, match=r"`distill_mode` must be one of \['hidden_mse', 'logits_kl'\]"):
        Distiller(student, student, mode="attention")
    with pytest.raises(ValueError,
                       match=r"`distill_loss_weight` must be a number > 0. Received: distill_loss_weight=0"):
        Distiller(student, student, loss_weight=0)
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="needs a TokenPruningClassifier student"):
        Distiller(plain, student)


def test_dense_teacher_copies_weights_without_token_pruning():
    student = _classifier(TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.2))
    teacher = dense_teacher(student)
    assert teacher.backbone.pruning_config.prune_mode == "none" and not teacher.trainable
    assert all(np.array_equal(_np(a), _np(b)) for a, b in zip(student.weights, teacher.weights))
    x, _ = _data(4)
    kept = _np(teacher.backbone(x)["kept_tokens"])
    np.testing.assert_array_equal(kept[:, -1], x["padding_mask"].sum(axis=1))


@pytest.mark.parametrize("mode", ["hidden_mse", "logits_kl"])
def test_setup_prunes_and_distills_in_one_fit(mode):
    model = _classifier(TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.1))
    config = WeightPruningConfig(do_prune=True, pruning_pattern="2:4", target_sparsity=0.5, pruning_frequency=2,
                                 sparsity_warm_epochs=1, cooldown_epochs=1, distill_loss_weight=2.0, distill_mode=mode)
    setup = setup_weight_pruning(model, config, steps_per_epoch=2, epochs=4)
    assert setup.model is model and setup.training_model is setup.distiller and len(setup.callbacks) == 1
    teacher_weights = [_np(w) for w in setup.distiller.teacher.weights]
    setup.training_model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False,
                                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(16)
    history = setup.training_model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=list(setup.callbacks))
    assert history.history["weight_sparsity"][-1] == sparsity_report(model).pruned_sparsity == 0.5
    assert all(np.array_equal(a, _np(b)) for a, b in zip(teacher_weights, setup.distiller.teacher.weights))
    assert find_plan(setup.distiller.teacher, required=False) is None
    # Evaluation reports the task loss of the student.
    logs = setup.training_model.evaluate(x, y, verbose=0, return_dict=True)
    student_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model.predict(x, verbose=0))
    assert logs["loss"] == pytest.approx(float(_np(student_loss)), rel=1e-4)


def test_setup_without_pruning_or_distillation_changes_nothing():
    model = _classifier()
    setup = setup_weight_pruning(model, WeightPruningConfig(), steps_per_epoch=2, epochs=2)
    assert setup.training_model is model and setup.callbacks == () and find_plan(model, required=False) is None
