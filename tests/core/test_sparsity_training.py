"""Pruning during `fit` on TensorFlow and JAX: schedule, masks, scores, the callback, strip, token pruning."""

import keras
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.sparsity import UpdateWeightPruning, WeightPruningGroup, find_plan, prune, sparsity_report, strip
from ltp_tf.sparsity.kernels import prunable_kernels
from ltp_tf.sparsity.optimizer import PruningOptimizer, ScoredKernel
from ltp_tf.sparsity.patterns import parse_pattern

VOCAB, SEQ, BATCH = 60, 8, 8


def _classifier(token_pruning=None, num_layers=2):
    backbone = TokenPruningBackbone(vocabulary_size=VOCAB, num_layers=num_layers, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, max_sequence_length=16, dropout=0.0,
                                    pruning_config=token_pruning)
    model = TokenPruningClassifier(backbone, 2, dropout=0.0)
    model(_data(1)[0])
    return model


def _data(steps, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * BATCH
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(1, VOCAB, size=(n, SEQ)), 0).astype("int32")
    return {"token_ids": ids, "padding_mask": mask}, (ids[:, 1] % 2).astype("int32")


def _compile(model, learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _masks(model):
    return [_np(k.mask) for k in find_plan(model).kernels]


def test_prune_then_strip_restores_the_exact_weights_and_outputs():
    model = _classifier()
    x, _ = _data(1)
    before = [_np(w) for w in model.weights]
    outputs = _np(model(x))
    prune(model, WeightPruningGroup(pattern="2:4", target_sparsity=0.5, start_step=1, end_step=4))
    plan = find_plan(model)
    assert len(model.weights) == len(before) + len(plan.kernels)
    assert all(not k.mask.trainable and k.mask.path.endswith("kernel_pruning_mask") for k in plan.kernels)
    np.testing.assert_array_equal(_np(model(x)), outputs)
    strip(model)
    assert find_plan(model, required=False) is None
    after = [_np(w) for w in model.weights]
    assert len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(after, before))
    assert all(w.constraint is None for w in model.weights)


@pytest.mark.parametrize("criterion", ["snip_momentum", "snip"])
def test_gradient_scores_match_numpy(criterion):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(8, name="dense")(inputs))
    prune(model, WeightPruningGroup(pattern="1x1", target_sparsity=0.5, pruning_type=criterion, start_step=1,
                                    end_step=4))
    pruned = find_plan(model).kernels[0]
    kernel = pruned.kernel.variable
    optimizer = PruningOptimizer(keras.optimizers.SGD(0.1), [ScoredKernel(kernel, pruned.mask, criterion)])
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    expected = np.zeros((4, 8))
    for _ in range(3):
        grads = [rng.normal(size=tuple(v.shape)).astype("float32") for v in model.trainable_variables]
        weight = _np(kernel)
        saliency = np.abs(weight * grads[0])
        expected = 0.9 * expected + saliency if criterion == "snip_momentum" else saliency
        optimizer.apply(grads, model.trainable_variables)
        np.testing.assert_allclose(_np(kernel), weight - 0.1 * grads[0], rtol=1e-6)
    np.testing.assert_allclose(_np(optimizer.score(kernel)), expected, rtol=1e-5)
    # A mask is re-applied right after the update, inside the step.
    mask = (rng.random((4, 8)) > 0.5).astype("float32")
    pruned.mask.assign(mask)
    optimizer.sync_masks()
    optimizer.apply([np.ones(tuple(v.shape), "float32") for v in model.trainable_variables], model.trainable_variables)
    assert np.all(_np(kernel)[mask == 0] == 0) and np.all(_np(kernel)[mask == 1] != 0)


def _rounded_sparsity(plan, sparsity, scope):
    """The sparsity the masks must have: whole blocks, counts rounded down per kernel (local) or per group."""
    pattern = plan.configs[0].parsed_pattern
    layouts = [pattern.layout(k.kernel.view.to_matrix(np.ones(k.kernel.view.shape))) for k in plan.kernels]
    total = sum(layout.num_elements for layout in layouts)
    if scope == "global":  # equal block sizes here
        size = layouts[0].elements_per_block
        return np.floor(sparsity * total / size + 1e-9) * size / total
    return sum(np.floor(min(sparsity, pattern.max_sparsity) * layout.num_elements / layout.elements_per_block + 1e-9)
               * layout.elements_per_block for layout in layouts) / total


def _assert_pattern(kernel_values, view, pattern, full):
    matrix = view.to_matrix(kernel_values)
    p = parse_pattern(pattern)
    if p.is_n_in_m:
        zeros = (matrix.reshape(matrix.shape[0] // p.m, p.m, -1) == 0).sum(axis=1)
        assert np.all(zeros == p.n) if full else np.all(zeros >= 0)
    else:
        rows = matrix.shape[0] if p.in_block is None else p.in_block
        cols = matrix.shape[1] if p.out_block is None else p.out_block
        blocks = (matrix.reshape(matrix.shape[0] // rows, rows, matrix.shape[1] // cols, cols) == 0).sum(axis=(1, 3))
        assert set(np.unique(blocks)) <= {0, rows * cols}


@pytest.mark.parametrize("criterion, pattern, target, scope", [("magnitude", "2:4", 0.5, "local"),
                                                               ("snip_momentum", "4x1", 0.75, "global"),
                                                               ("snip", "1xchannel", 0.5, "local")])
def test_target_reached_at_the_end_step_and_held(criterion, pattern, target, scope):
    model = _classifier()
    config = WeightPruningGroup(pattern=pattern, target_sparsity=target, pruning_type=criterion, pruning_scope=scope,
                                start_step=2, end_step=11, pruning_frequency=2, excluded_op_names=("pooled_dense",))
    prune(model, config)
    _compile(model)
    x, y = _data(2)
    # Two steps per epoch: every epoch ends on a pruning event (steps 2, 4, ..., 10).
    history = model.fit(x, y, batch_size=BATCH, epochs=5, verbose=0, callbacks=[UpdateWeightPruning()])
    schedule = config.schedule
    plan = find_plan(model)
    expected = [_rounded_sparsity(plan, schedule.sparsity(k), scope) for k in range(5)]
    np.testing.assert_allclose(history.history["weight_sparsity"], expected, rtol=1e-12)
    assert plan.step == 10 == schedule.final_step
    final_masks = _masks(model)
    report = sparsity_report(model)
    assert report.pruned_sparsity == pytest.approx(target, abs=0.02)
    for pruned in plan.kernels:
        values = _np(pruned.kernel.variable)
        np.testing.assert_array_equal(values == 0, _np(pruned.mask) == 0)
        _assert_pattern(values, pruned.kernel.view, pattern, full=scope == "local")
        if scope == "local":
            assert (values == 0).mean() == pytest.approx(target, abs=1.0 / values.size * 4)
    # Further training (past the end step) changes weights but neither the masks nor the zeros.
    kept_before = [_np(k.kernel.variable) for k in plan.kernels]
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[UpdateWeightPruning()])
    assert plan.step == 16
    for old, new, pruned in zip(final_masks, _masks(model), plan.kernels):
        np.testing.assert_array_equal(old, new)
        np.testing.assert_array_equal(_np(pruned.kernel.variable) == 0, new == 0)
    assert any(not np.array_equal(a, _np(k.kernel.variable)) for a, k in zip(kept_before, plan.kernels))
    assert sparsity_report(model).pruned_sparsity == report.pruned_sparsity


def test_training_without_the_callback_fails_loudly():
    x, y = _data(1)
    config = WeightPruningGroup(pattern="2:4", target_sparsity=0.5, start_step=1, end_step=2)
    model = prune(_classifier(), config)
    _compile(model)
    with pytest.raises(RuntimeError, match=r"needs the `ltp_tf.sparsity.UpdateWeightPruning\(\)` callback"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    # After a fit with the callback, its pruning step is not reused by a fit without it.
    model = prune(_classifier(), config)
    _compile(model)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[UpdateWeightPruning()])
    model.evaluate(x, y, verbose=0)  # inference needs no callback
    with pytest.raises(RuntimeError, match="UpdateWeightPruning"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)


def test_prune_and_strip_misuse():
    model = _classifier()
    with pytest.raises(ValueError, match="has no weight pruning to strip"):
        strip(model)
    prune(model, WeightPruningGroup(start_step=1, end_step=2))
    with pytest.raises(ValueError, match=r"is already pruned: call `strip\(model\)`"):
        prune(model, WeightPruningGroup(start_step=1, end_step=2))
    unbuilt = TokenPruningClassifier(TokenPruningBackbone(VOCAB, 1, 2, 16, 32), 2)
    with pytest.raises(ValueError, match="must be built before pruning"):
        prune(unbuilt, WeightPruningGroup(start_step=1, end_step=2))
    with pytest.raises(ValueError, match="nothing can be pruned"):
        prune(_classifier(), WeightPruningGroup(op_names=("logits",), pattern="4x1", start_step=1, end_step=2))


def test_attention_kernels_are_pruned_in_4x1_blocks_within_heads():
    model = _classifier(num_layers=1)
    prune(model, WeightPruningGroup(op_names=("self_attention_layer",), pattern="4x1", target_sparsity=0.5,
                                    pruning_type="magnitude", pruning_scope="local", start_step=1, end_step=1))
    _compile(model)
    x, y = _data(1)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[UpdateWeightPruning()])
    plan = find_plan(model)
    assert sorted(k.path.split("/")[-2] for k in plan.kernels) == ["attention_output", "key", "query", "value"]
    for pruned in plan.kernels:
        values = _np(pruned.kernel.variable)
        if values.shape[-1] == 8:  # query/key/value (hidden, heads, head_dim): 4 consecutive units of one head
            blocks = (values.reshape(16, 2, 2, 4) == 0).sum(axis=-1)
        else:  # attention_output (heads, head_dim, hidden): 4 consecutive hidden outputs of one input unit
            blocks = (values.reshape(2, 8, 4, 4) == 0).sum(axis=-1)
        assert set(np.unique(blocks)) == {0, 4}
        assert (values == 0).mean() == 0.5


def test_token_pruning_and_2_in_4_in_one_run():
    token_pruning = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.12)
    model = _classifier(token_pruning, num_layers=3)
    prune(model, WeightPruningGroup(op_names=("transformer_layer",), pattern="2:4", target_sparsity=0.5,
                                    pruning_type="snip_momentum", start_step=1, end_step=5, pruning_frequency=2))
    _compile(model)
    x, y = _data(3)
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[UpdateWeightPruning()])
    assert np.all(np.isfinite(history.history["loss"])) and history.history["weight_sparsity"][-1] == 0.5
    for pruned in find_plan(model).kernels:
        _assert_pattern(_np(pruned.kernel.variable), pruned.kernel.view, "2:4", full=True)
    outputs = model.backbone(x, training=False)
    kept = _np(outputs["kept_tokens"])
    assert np.all(kept[:, -1] < _np(outputs["sequence_lengths"]))  # tokens are still pruned
    assert np.all(kept[:, -1] >= 1)  # [CLS] survives


def test_interrupted_run_resumes_schedule_and_masks_from_the_checkpoint(tmp_path):
    config = WeightPruningGroup(pattern="4x1", target_sparsity=0.5, pruning_type="magnitude", start_step=2,
                                end_step=4, pruning_frequency=2, op_names=("transformer_layer",))
    x, y = _data(2)
    first = _classifier()
    prune(first, config)
    _compile(first)
    first.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[UpdateWeightPruning()])
    path = str(tmp_path / "run.weights.h5")
    first.save_weights(path)  # masks are not saved; the zeros are
    resumed = _classifier()
    resumed.load_weights(path)
    prune(resumed, config)
    _compile(resumed)
    resumed.fit(x, y, batch_size=BATCH, epochs=4, initial_epoch=2, verbose=0, callbacks=[UpdateWeightPruning()])
    plan = find_plan(resumed)
    assert plan.step == 8
    for old, new in zip(find_plan(first).kernels, plan.kernels):
        np.testing.assert_array_equal(_np(old.mask), _np(new.mask))
        np.testing.assert_array_equal(_np(new.kernel.variable) == 0, _np(new.mask) == 0)


def test_mixed_float16_scores_see_unscaled_gradients():
    keras.config.set_dtype_policy("mixed_float16")
    model = _classifier()
    prune(model, WeightPruningGroup(pattern="4x1", target_sparsity=0.5, pruning_type="snip_momentum", start_step=2,
                                    end_step=2, op_names=("transformer_layer",)))
    _compile(model)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x, y = _data(2)
    history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[UpdateWeightPruning()])
    plan = find_plan(model)
    assert history.history["weight_sparsity"] == [0.5]
    assert isinstance(model.optimizer.inner_optimizer, keras.optimizers.Adam)  # unwrapped after fit
    # Loss scaling multiplies gradients by 2**15: unscaled snip scores of this model stay far below that.
    scores = [_np(plan.optimizer.score(k.kernel.variable)) for k in plan.kernels]
    assert 0 < max(s.max() for s in scores) < 1e3


def test_encoder_weight_density_counts_the_zeros_of_pruned_encoder_kernels():
    from ltp_tf.training.evaluation import encoder_weight_density

    model = _classifier(num_layers=2)
    assert encoder_weight_density(model) == 1.0
    kernels = [k for block in model.backbone.transformer_layers for k in prunable_kernels(block)]
    prune(model, WeightPruningGroup(op_names=("transformer_layer",), pattern="2:4", target_sparsity=0.5,
                                    start_step=0, end_step=1, pruning_frequency=1))
    _compile(model)
    x, y = _data(2)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[UpdateWeightPruning()])
    values = [_np(k.variable) for k in kernels]
    expected = sum(np.count_nonzero(v) for v in values) / sum(v.size for v in values)
    assert encoder_weight_density(model) == pytest.approx(expected) and expected <= 0.5 + 1e-6
