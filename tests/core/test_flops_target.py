"""FLOPs target and cached-teacher distillation (`ltp_tf.training.token_pruning_trainer`,
`ltp_tf.training.teacher_cache`).

Covers: the differentiable FLOPs ratio against `count_flops` (0/1 masks, through the backbone too) and its
gradient against finite differences; the straight-through mask's forward values; the multiplier's direction;
a short soft stage moving hard FLOPs toward the target from above and from below; the KD losses against
NumPy; the teacher cache (equal to a fresh forward pass, reused on rerun, another teacher invalidates it);
and the whole `run` with a target and distillation.
"""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.checkpoints import load_checkpoint, save_checkpoint
from ltp_tf.data.features import TaskData, save_features
from ltp_tf.data.glue import get_task
from ltp_tf.flops import count_flops, expected_flops_ratio
from ltp_tf.sparsity.distillation import logits_kd_loss, mean_squared_error
from ltp_tf.training import TrainConfig, layout, run, teacher_cache
from ltp_tf.training.batching import TrainBatches, fit_input
from ltp_tf.training.token_pruning_trainer import (
    TEACHER_HIDDEN,
    TEACHER_LOGITS,
    FlopsTarget,
    TokenPruningTrainer,
)
from tests.tiny_glue import random_features, random_split, write_vocab

SEQ = 16


def _gradient(fn, x):
    """d sum(fn(x)) / dx on the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    import tensorflow as tf

    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(fn(x))
    return tape.gradient(value, x).numpy()


def _features(rng, count):
    return random_features(rng, count, SEQ, min_length=6)


def _classifier(pruning=None, threshold_lr_scale=1.0, seed=0, num_classes=2):
    keras.utils.set_random_seed(seed)
    backbone = TokenPruningBackbone(vocabulary_size=40, num_layers=3, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    dropout=0.0, max_sequence_length=SEQ, pruning_config=pruning,
                                    threshold_lr_scale=threshold_lr_scale)
    model = TokenPruningClassifier(backbone, num_classes=num_classes, dropout=0.0)
    model.build()
    return model


def _inputs(features):
    return {"token_ids": features.token_ids, "segment_ids": features.segment_ids,
            "padding_mask": features.padding_mask.astype("int32")}


def test_expected_ratio_equals_count_flops_on_integer_counts():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=7)
    kept = np.minimum.accumulate(np.stack([rng.integers(1, n + 1, size=4) for n in lengths]), axis=1)
    ratio = float(ops.convert_to_numpy(expected_flops_ratio(384, 1536, lengths, kept.astype("float32"))))
    assert ratio == pytest.approx(1.0 / count_flops(384, 1536, lengths, kept).reduction, rel=1e-5)


@pytest.mark.parametrize("soft_mask", ["sigmoid", "straight_through"])
def test_backbone_kept_tokens_in_soft_training(soft_mask):
    """Straight-through soft training keeps exactly what hard inference keeps (0/1 masks: the ratio is
    count_flops); sigmoid masks compound over layers (a token's survival is the product of its masks)."""
    features = _features(np.random.default_rng(1), 6)
    pruning = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft", final_token_threshold=0.2,
                                 scoring_mode="length_normalized", temperature=0.02, soft_mask=soft_mask)
    backbone = _classifier(pruning).backbone
    trained = backbone(_inputs(features), training=True)
    kept = ops.convert_to_numpy(trained["kept_tokens"])
    if soft_mask == "straight_through":
        hard = ops.convert_to_numpy(backbone(_inputs(features), training=False)["kept_tokens"])
        np.testing.assert_array_equal(kept, hard)
        assert (hard[:, -1] < features.lengths).any()  # something was pruned
        ratio = float(ops.convert_to_numpy(expected_flops_ratio(16, 32, features.lengths, kept)))
        assert ratio == pytest.approx(1 / count_flops(16, 32, features.lengths, kept).reduction, rel=1e-5)
    else:
        assert (np.diff(kept, axis=1) <= 1e-5).all()  # compounding masks never grow back
        assert (kept != np.round(kept)).any()


def test_expected_ratio_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    lengths = rng.integers(8, 30, size=3).astype("float32")
    kept = (lengths[:, None] * rng.uniform(0.3, 1.0, size=(3, 4))).astype("float32")

    def ratio(values):
        return expected_flops_ratio(16, 64, lengths, values)

    analytic = _gradient(ratio, kept)
    numeric = np.zeros_like(kept, dtype=np.float64)
    step = 1e-2
    for index in np.ndindex(kept.shape):
        up, down = kept.astype(np.float64).copy(), kept.astype(np.float64).copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (1 / count_flops(16, 64, lengths, up).reduction
                          - 1 / count_flops(16, 64, lengths, down).reduction) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=1e-7)


def test_multiplier_rises_above_target_and_falls_below():
    lengths = np.array([10.0, 10.0], "float32")
    layer = FlopsTarget(2.0, 16, 32, multiplier_lr=0.5, proportional_gain=0.0)
    layer.build()
    above = np.full((2, 3), 9.0, "float32")  # ~0.9 of dense: above the 0.5 budget
    below = np.full((2, 3), 2.0, "float32")
    for _ in range(3):
        layer(lengths, above, training=True)
    high = float(ops.convert_to_numpy(layer.multiplier))
    assert high > 0
    layer(lengths, below, training=True)
    assert float(ops.convert_to_numpy(layer.multiplier)) < high
    layer(lengths, below, training=False)  # inference leaves it alone
    before = float(ops.convert_to_numpy(layer.multiplier))
    layer(lengths, below, training=False)
    assert float(ops.convert_to_numpy(layer.multiplier)) == before


def _hard_reduction(classifier, features):
    outputs = classifier.backbone(_inputs(features), training=False)
    return count_flops(16, 32, features.lengths, ops.convert_to_numpy(outputs["kept_tokens"])).reduction


def test_short_soft_stage_moves_flops_toward_target_from_both_sides():
    features = _features(np.random.default_rng(3), 32)
    labels = (features.token_ids[:, 1] >= 22).astype("int32")
    pruning = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft", final_token_threshold=0.3,
                                 scoring_mode="length_normalized", temperature=0.01, mask_loss_weight=0.0)
    start = _hard_reduction(_classifier(pruning, threshold_lr_scale=50.0), features)
    assert 1.2 < start < 2.5
    for target in (1.05, 4.0):
        classifier = _classifier(pruning, threshold_lr_scale=50.0)
        trainer = TokenPruningTrainer(classifier, target_flops_reduction=target, multiplier_lr=0.5,
                                      proportional_gain=5.0)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        jit_compile=keras.backend.backend() == "jax")  # XLA is slow to compile on a TF CPU
        trainer.fit(_inputs(features), labels, batch_size=16, epochs=4, verbose=0, shuffle=False)
        achieved = _hard_reduction(classifier, features)
        assert abs(np.log(achieved / target)) < abs(np.log(start / target)) - 0.05, (target, start, achieved)


def test_kd_losses_match_numpy():
    rng = np.random.default_rng(4)
    student, teacher = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    t = 2.5

    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    p_log, q_log = log_softmax(teacher / t), log_softmax(student / t)
    expected = t * t * np.mean(np.sum(np.exp(p_log) * (p_log - q_log), axis=1))
    assert float(ops.convert_to_numpy(logits_kd_loss(student, teacher, t))) == pytest.approx(expected, rel=1e-5)
    assert float(ops.convert_to_numpy(logits_kd_loss(teacher, teacher, t))) == pytest.approx(0.0, abs=1e-6)
    assert float(ops.convert_to_numpy(mean_squared_error(student, teacher))) == pytest.approx(
        np.mean((student - teacher) ** 2), rel=1e-5)


def test_trainer_adds_kd_losses_from_batch_inputs():
    features = _features(np.random.default_rng(5), 4)
    classifier = _classifier()
    trainer = TokenPruningTrainer(classifier, kd_weight=0.5, kd_temperature=2.0, kd_hidden_weight=0.25)
    teacher_logits = np.random.default_rng(6).normal(size=(4, 2)).astype("float32")
    hidden = np.zeros((4, 16), "float32")
    inputs = {**_inputs(features), TEACHER_LOGITS: teacher_logits, TEACHER_HIDDEN: hidden}
    logits = trainer(inputs, training=True)
    losses = [float(ops.convert_to_numpy(loss)) for loss in trainer.losses]
    states = classifier.backbone(_inputs(features), training=True)["sequence_output"][:, 0, :]
    assert losses == pytest.approx([0.5 * float(logits_kd_loss(logits, teacher_logits, 2.0)),
                                    0.25 * float(np.mean(ops.convert_to_numpy(states) ** 2))], rel=1e-5)
    with pytest.raises(ValueError, match="teacher_logits"):
        trainer(_inputs(features), training=True)
    with pytest.raises(ValueError, match="mask_loss_weight=0"):
        TokenPruningTrainer(_classifier(TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft")),
                            target_flops_reduction=2.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A features folder and two different dense tiny checkpoints."""
    root = tmp_path_factory.mktemp("kd")
    vocab = write_vocab(str(root))
    rng = np.random.default_rng(7)

    def split(count):
        return random_split(rng, count, SEQ, min_length=6)

    data = TaskData(task=get_task("sst2"), max_seq_length=SEQ, train=split(32), dev={"dev": split(16)},
                    vocabulary_file=str(vocab), lowercase=True)
    paths = {"features": save_features(str(root / "features"), data, source={"synthetic": True}), "data": data}
    for seed in (0, 1):
        paths[f"teacher{seed}"] = save_checkpoint(
            str(root / f"dense{seed}"), _classifier(seed=seed), task="sst2", max_seq_length=SEQ,
            vocabulary_file=str(vocab), metadata={"stage": "finetune", "pruning_config": {"prune_mode": "none"}})
    return paths


def test_teacher_cache_equals_fresh_forward_reuses_and_invalidates(tiny, tmp_path, monkeypatch):
    train = tiny["data"].train
    cached = teacher_cache.teacher_outputs(str(tmp_path), tiny["teacher0"], train, hidden=True, batch_size=8,
                                           pad_to_multiple_of=8)
    fresh = _classifier(seed=0)
    inputs = _inputs(train.features)
    np.testing.assert_allclose(cached[TEACHER_LOGITS], ops.convert_to_numpy(fresh(inputs, training=False)),
                               rtol=1e-5, atol=1e-5)
    states = ops.convert_to_numpy(fresh.backbone(inputs, training=False)["sequence_output"][:, 0, :])
    np.testing.assert_allclose(cached[TEACHER_HIDDEN], states, rtol=1e-5, atol=1e-5)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    with monkeypatch.context() as patch:  # a rerun reads the cache
        patch.setattr(teacher_cache, "compute_teacher_outputs", fail)
        again = teacher_cache.teacher_outputs(str(tmp_path), tiny["teacher0"], train, hidden=True, batch_size=8,
                                              pad_to_multiple_of=8)
        np.testing.assert_array_equal(again[TEACHER_LOGITS], cached[TEACHER_LOGITS])
        with pytest.raises(AssertionError, match="recomputed"):  # another teacher is not served stale outputs
            teacher_cache.teacher_outputs(str(tmp_path), tiny["teacher1"], train, hidden=True, batch_size=8,
                                          pad_to_multiple_of=8)
    other = teacher_cache.teacher_outputs(str(tmp_path), tiny["teacher1"], train, hidden=False, batch_size=8,
                                          pad_to_multiple_of=8)
    assert not np.allclose(other[TEACHER_LOGITS], cached[TEACHER_LOGITS]) and TEACHER_HIDDEN not in other
    records = [json.load(open(os.path.join(tmp_path, d, teacher_cache.RECORD_FILE))) for d in os.listdir(tmp_path)]
    assert sorted(r["teacher_fingerprint"] for r in records) == sorted(
        teacher_cache.checkpoint_fingerprint(tiny[name]) for name in ("teacher0", "teacher1"))


def test_batches_carry_teacher_outputs_by_example_index(tiny):
    train = tiny["data"].train
    logits = np.arange(len(train) * 2, dtype="float32").reshape(-1, 2)
    batches = TrainBatches(train, 8, seed=3, num_steps=4, example_inputs={TEACHER_LOGITS: logits})
    for step in range(4):
        inputs, labels = batches[step]
        np.testing.assert_array_equal(inputs[TEACHER_LOGITS], logits[batches.batch_indices(step)])
    assert fit_input(batches) is not None
    with pytest.raises(ValueError, match="one row per training example"):
        TrainBatches(train, 8, seed=3, num_steps=1, example_inputs={TEACHER_LOGITS: logits[:3]})


def test_run_with_target_and_distillation(tiny, tmp_path):
    config = TrainConfig(task="sst2", stages=("soft",), restore=tiny["teacher0"], features_dir=tiny["features"],
                         output_dir=str(tmp_path), max_seq_length=SEQ, bs=8, lr=1e-3, epoch=2,
                         final_token_threshold=0.3, scoring_mode="length_normalized", threshold_lr=2e-2,
                         temperature=0.01, soft_mask="straight_through", target_flops_reduction=1.5, kd_weight=1.0,
                         verbose=0, seed=1, pad_to_multiple_of=SEQ)
    soft = run(config)["stages"]["soft"]
    # The soft stage keeps its last weights, not an earlier best on dev: the controller reaches the target late.
    assert soft["train"]["kept"] == "last" and len(soft["train"]["history"]) == 2
    assert soft["flops"]["reduction"] == pytest.approx(soft["train"]["history"][-1]["flops_reduction"])
    assert "target_1.5" in layout.stage_dir(config, "soft")
    assert soft["flops_target"]["target_reduction"] == 1.5
    assert soft["flops_target"]["achieved_reduction"] == pytest.approx(soft["flops"]["reduction"])
    assert "flops_multiplier" in soft["train"]
    records = os.listdir(layout.teacher_cache_dir(config))  # the dense --restore's outputs, cached once
    assert len(records) == 1
    with pytest.raises(ValueError, match="add `soft` to --stages"):
        TrainConfig(task="sst2", stages=("hard",), restore=tiny["teacher0"], target_flops_reduction=2.0)
    with pytest.raises(ValueError, match="--target_flops_reduction` must be > 1"):
        TrainConfig(task="sst2", stages=("soft",), restore=tiny["teacher0"], target_flops_reduction=0.5)


def test_target_and_distillation_train_through_weight_pruning(tiny, tmp_path):
    """LTP + 2:4 at a FLOPs target with distillation: the masks stay on the kernels the trainer updates."""
    pruning = {"do_prune": True, "pruning_pattern": "2:4", "target_sparsity": 0.5, "sparsity_warm_epochs": 0,
               "cooldown_epochs": 0, "pruning_frequency": 1}
    config = TrainConfig(task="sst2", stages=("soft", "hard"), restore=tiny["teacher0"], features_dir=tiny["features"],
                         output_dir=str(tmp_path), max_seq_length=SEQ, bs=8, lr=1e-3, epoch=1,
                         final_token_threshold=0.3, scoring_mode="length_normalized", threshold_lr=2e-2,
                         temperature=0.01, soft_mask="straight_through", target_flops_reduction=1.5, kd_weight=1.0,
                         verbose=0, seed=1, pad_to_multiple_of=SEQ, weight_pruning=pruning)
    stages = run(config)["stages"]
    assert stages["soft"]["flops_target"]["target_reduction"] == 1.5 and "flops_multiplier" in stages["soft"]["train"]
    assert stages["hard"]["flops"]["weight_density"] < 1.0
    model = load_checkpoint(layout.stage_dir(config, "hard")).model
    kernels = [w for w in model.weights if w.path.endswith("kernel") and "intermediate" in w.path]
    assert kernels
    for kernel in kernels:
        groups = keras.ops.convert_to_numpy(kernel).T.reshape(-1, 4)  # (out, in): 2 of every 4 consecutive inputs
        assert np.all((groups == 0).sum(axis=1) >= 2), kernel.path
    with pytest.raises(ValueError, match="does not combine"):
        TrainConfig(task="sst2", stages=("soft",), restore=tiny["teacher0"], target_flops_reduction=2.0,
                    weight_pruning={**pruning, "distill_loss_weight": 1.0})


def test_weight_pruning_with_its_distillation_evaluates_and_saves_the_student(tiny, tmp_path):
    """`--do_prune --distill_loss_weight` trains a `Distiller`; evaluation, report and checkpoint use its student."""
    pruning = {"do_prune": True, "pruning_pattern": "2:4", "target_sparsity": 0.5, "sparsity_warm_epochs": 0,
               "cooldown_epochs": 0, "pruning_frequency": 1, "distill_loss_weight": 1.0}
    config = TrainConfig(task="sst2", stages=("finetune",), restore=tiny["teacher0"], features_dir=tiny["features"],
                         output_dir=str(tmp_path), max_seq_length=SEQ, bs=8, lr=1e-3, epoch=1, verbose=0, seed=1,
                         pad_to_multiple_of=SEQ, weight_pruning=pruning)
    finetune = run(config)["stages"]["finetune"]
    assert "accuracy" in finetune["dev"]["dev"] and finetune["flops"]["weight_density"] < 1.0
    model = load_checkpoint(layout.stage_dir(config, "finetune")).model
    assert isinstance(model, TokenPruningClassifier)
