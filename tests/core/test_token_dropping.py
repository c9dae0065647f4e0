"""The token-dropping runner on random models: equals hard masking, buckets bound programs, clear errors.

Backend-agnostic: runs under TensorFlow and JAX (`KERAS_BACKEND=jax`). On TensorFlow, XLA compilation
costs about a second per program here, so most checks run the same segments as graph `tf.function`s; on
JAX, eager execution compiles every op instead, so there they run jitted. The XLA path is checked on both
backends on mixed lengths, one sentence and program reuse.
"""

import keras
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.inference import TokenDroppingRunner, length_buckets, round_up_batch, round_up_length

MAX_LEN = 40
JIT = keras.backend.backend() == "jax"  # the cheaper mode for the checks that do not depend on it
CONFIGS = {
    "threshold": TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.3, score_reference_length=8),
    "topk": TokenPruningConfig(prune_mode="topk", token_keep_rate=0.3),
    "dense": TokenPruningConfig(),
}


def _classifier(config, num_layers=4, num_classes=3):
    backbone = TokenPruningBackbone(vocabulary_size=60, num_layers=num_layers, num_heads=2, hidden_dim=16,
                                    intermediate_dim=32, max_sequence_length=MAX_LEN, pruning_config=config)
    model = TokenPruningClassifier(backbone, num_classes=num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    return model


def _inputs(lengths, seq_len=32, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    ids = rng.integers(1, 60, size=mask.shape).astype("int32")
    segments = (np.arange(seq_len)[None, :] >= (lengths[:, None] // 2)).astype("int32")
    return {"token_ids": ids * mask, "segment_ids": segments * mask, "padding_mask": mask}


def _masked(model, inputs):
    """The hard-masked model (no token removal)."""
    outputs = model.backbone(inputs, training=False)
    return {"logits": keras.ops.convert_to_numpy(model.output_dense(outputs["pooled_output"])),
            "pooled_output": keras.ops.convert_to_numpy(outputs["pooled_output"]),
            "kept_tokens": np.rint(keras.ops.convert_to_numpy(outputs["kept_tokens"])).astype("int32")}


def _assert_same(result, reference):
    np.testing.assert_array_equal(result["kept_tokens"], reference["kept_tokens"])
    np.testing.assert_allclose(result["pooled_output"], reference["pooled_output"], atol=2e-5)
    np.testing.assert_allclose(result["logits"], reference["logits"], atol=2e-5)


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(7)
    return {name: _classifier(config) for name, config in CONFIGS.items()}


@pytest.mark.parametrize("name,length_bucket,jit_compile", [
    ("threshold", 8, True), ("threshold", 1, JIT), ("topk", 8, True), ("topk", 1, JIT), ("dense", 8, JIT)])
def test_dropping_equals_masking_on_mixed_lengths(models, name, length_bucket, jit_compile):
    model = models[name]
    inputs = _inputs([32, 3, 17, 1, 25, 9, 12])
    runner = TokenDroppingRunner(model, length_bucket=length_bucket, jit_compile=jit_compile)
    result = runner(inputs)
    _assert_same(result, _masked(model, inputs))
    if name != "dense":  # tokens really were removed: later programs ran on shorter sequences
        lengths_run = {length for segment, _, length in runner.shapes_seen if segment == len(runner.compact_layers)}
        assert max(lengths_run) < 32


def test_any_compaction_layers_give_the_same_outputs(models):
    model = models["threshold"]
    inputs = _inputs([32, 3, 17, 25])
    reference = _masked(model, inputs)
    runner = TokenDroppingRunner(model, jit_compile=JIT)
    assert runner.pruning_layers == runner.compact_layers == [1, 2, 3]
    for compact_layers in ([], [2], [1, 3]):
        runner = TokenDroppingRunner(model, compact_layers=compact_layers, jit_compile=JIT)
        _assert_same(runner(inputs), reference)
        assert {segment for segment, _, _ in runner.shapes_seen} == set(range(len(compact_layers) + 1))


def test_length_gate_runs_short_chunks_mask_only_with_the_same_outputs(models):
    model = models["threshold"]
    inputs = _inputs([32, 3, 17, 25, 5, 7])  # chunks of 2 by length: buckets 8, 24, 32
    runner = TokenDroppingRunner(model, compact_min_length=16, max_batch_size=2, jit_compile=JIT)
    _assert_same(runner(inputs), _masked(model, inputs))
    gated = {(segment, length) for segment, _, length in runner.shapes_seen}
    assert {(-2, 8), (0, 24), (0, 32)} <= gated  # the short chunk ran mask-only, the long ones compacted
    assert {length for segment, length in gated if segment == -2} == {8}
    with pytest.raises(ValueError, match="compact_min_length"):
        TokenDroppingRunner(model, compact_min_length=-1)


def test_one_sentence_and_uncompiled_path(models):
    model = models["threshold"]
    inputs = _inputs([11], seq_len=11)
    reference = _masked(model, inputs)
    for jit_compile in (True, False):
        _assert_same(TokenDroppingRunner(model, jit_compile=jit_compile)(inputs), reference)


def test_chunks_sorting_and_batch_padding_keep_input_order(models):
    model = models["topk"]
    lengths = [5, 30, 2, 17, 11, 26, 1]
    inputs = _inputs(lengths, seed=3)
    reference = _masked(model, inputs)
    for max_batch_size, sort_by_length, pad_batch in ((3, True, True), (4, False, False)):
        runner = TokenDroppingRunner(model, max_batch_size=max_batch_size, sort_by_length=sort_by_length,
                                     pad_batch=pad_batch, jit_compile=JIT)
        result = runner(inputs)
        _assert_same(result, reference)
        np.testing.assert_array_equal(result["sequence_lengths"], lengths)
        batch_sizes = {batch for _, batch, _ in runner.shapes_seen}
        assert all(b & (b - 1) == 0 for b in batch_sizes) if pad_batch else max(batch_sizes) <= max_batch_size


def test_one_program_path_with_fitted_capacities(models):
    model = models["topk"]  # top-k keeps round(0.3 * length) at the last layer: predictable per length
    runner = TokenDroppingRunner(model, jit_compile=JIT)
    capacities = runner.fit_capacities(_inputs([25, 20]), batch_size=2)
    assert capacities == {(2, 32): (8,)}  # batch 2, bucket of 25; round(0.3 * 25) = round(7.5) = 8 kept
    runner.shapes_seen.clear()
    inputs = _inputs([25, 18], seed=5)
    _assert_same(runner(inputs), _masked(model, inputs))
    assert runner.fallbacks == 0 and {s for s, _, _ in runner.shapes_seen} == {-1}
    longer = _inputs([32, 30], seed=6)  # same bucket, keeps 10 > 8: detected, recomputed by segments
    _assert_same(runner(longer), _masked(model, longer))
    assert runner.fallbacks == 1 and {s for s, _, _ in runner.shapes_seen} == {-1, 0, 1}
    runner.shapes_seen.clear()
    four = _inputs([25, 18, 22, 20], seed=7)  # batch 4 was not fitted: the segmented path
    _assert_same(runner(four), _masked(model, four))
    assert {s for s, _, _ in runner.shapes_seen} == {0, 1}


def test_capacity_margin_raises_the_longest_kept_row_before_bucketing(models):
    model = models["topk"]
    runner = TokenDroppingRunner(model, jit_compile=JIT)
    assert runner.fit_capacities(_inputs([25, 20]), batch_size=2, margin=0.25) == {(2, 32): (16,)}  # 8 * 1.25 = 10
    longer = _inputs([32, 30], seed=6)  # keeps 10: within the margin, no fallback
    _assert_same(runner(longer), _masked(model, longer))
    assert runner.fallbacks == 0
    capped = TokenDroppingRunner(model, jit_compile=JIT)
    assert capped.fit_capacities(_inputs([25, 20]), batch_size=2, margin=1) == {(2, 32): (16,)}  # 16 <= bucket
    for margin in (-0.1, 1.5, "0.2", True):
        with pytest.raises(ValueError, match="`margin` must be a number in \\[0, 1\\]"):
            runner.fit_capacities(_inputs([25, 20]), batch_size=2, margin=margin)


def test_bucketed_padding_does_not_change_results(models):
    """Extra padding slots, in the input or from rounding kept lengths up, are dead tokens."""
    model = models["threshold"]
    inputs = _inputs([13, 6, 9], seq_len=13)
    padded = {key: np.pad(value, ((0, 0), (0, 20))) for key, value in inputs.items()}
    exact = TokenDroppingRunner(model, length_bucket=1, jit_compile=JIT)(inputs)
    for bucket in (4, 40):
        _assert_same(TokenDroppingRunner(model, length_bucket=bucket, jit_compile=JIT)(padded), exact)


def test_buckets_bound_the_number_of_programs(models):
    model = models["threshold"]
    runner = TokenDroppingRunner(model, length_bucket=8)
    for length in range(9, 17):  # one bucket (16) for every input length
        runner(_inputs([length]))
    first_segment = {shape for shape in runner.shapes_seen if shape[0] == 0}
    assert first_segment == {(0, 1, 16)}


def test_backbone_only(models):
    backbone = models["threshold"].backbone
    inputs = _inputs([20, 4])
    result = TokenDroppingRunner(backbone, jit_compile=JIT)(inputs)
    assert "logits" not in result
    np.testing.assert_allclose(result["pooled_output"], _masked(models["threshold"], inputs)["pooled_output"],
                               atol=2e-5)


def test_defaults_for_missing_segments_and_mask(models):
    model = models["threshold"]
    ids = _inputs([12, 12])["token_ids"][:, :12]
    full = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids, bool)}
    _assert_same(TokenDroppingRunner(model, jit_compile=JIT)({"token_ids": ids}), _masked(model, full))


def test_round_up_helpers():
    assert [round_up_length(n, 8, 40) for n in (0, 1, 3, 5, 8, 9, 17, 33, 40)] == [1, 1, 4, 8, 8, 16, 24, 40, 40]
    assert round_up_length(5, 1, 40) == 5
    assert [round_up_batch(n) for n in (1, 2, 3, 5, 32, 33)] == [1, 2, 4, 8, 32, 64]
    with pytest.raises(ValueError, match="exceeds the maximum 40"):
        round_up_length(41, 8, 40)
    with pytest.raises(ValueError, match="length_bucket=0"):
        round_up_length(3, 0, 40)
    with pytest.raises(ValueError, match="batch_size=0"):
        round_up_batch(0)
    assert length_buckets(8, 40, 40) == [1, 2, 4, 8, 16, 24, 32, 40]
    assert length_buckets(8, 30, 40) == [1, 2, 4, 8, 16, 24, 32]  # 30 rounds up past the longest


def test_capped_forward_is_the_one_program_path(models):
    """The pure function the SavedModel's XLA buckets compile: what `fit_capacities` runs, with the overflow flag."""
    model = models["topk"]
    runner = TokenDroppingRunner(model, jit_compile=JIT)
    inputs = _inputs([25], seq_len=32)
    args = [keras.ops.convert_to_tensor(inputs[name]) for name in ("token_ids", "segment_ids", "padding_mask")]
    lengths = keras.ops.convert_to_tensor(np.array([25], "int32"))
    reference = _masked(model, inputs)
    for capacities, overflow in (((8,), False), ((4,), True)):  # the last layer keeps round(0.3 * 25) = 8
        outputs = runner.capped_forward(capacities, *args, lengths)
        assert bool(keras.ops.convert_to_numpy(outputs["overflow"])) == overflow
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs["kept_tokens"]), reference["kept_tokens"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(runner.capped_forward((8,), *args, lengths)["logits"]),
                               reference["logits"], atol=2e-5)
    with pytest.raises(ValueError, match="one length per compaction layer"):
        runner.capped_forward((8, 8), *args, lengths)


def test_errors(models):
    model = models["threshold"]
    with pytest.raises(ValueError, match="TokenPruningClassifier or TokenPruningBackbone. Received: model of type"):
        TokenDroppingRunner(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="length_bucket"):
        TokenDroppingRunner(model, length_bucket=2.5)
    with pytest.raises(ValueError, match="max_batch_size=0"):
        TokenDroppingRunner(model, max_batch_size=0)
    with pytest.raises(ValueError, match=r"pruning layers of the model \(\[1, 2, 3\]\). Received: compact_layers=\[0\]"):
        TokenDroppingRunner(model, compact_layers=[0])
    runner = TokenDroppingRunner(model, jit_compile=JIT)
    with pytest.raises(ValueError, match="more than max_sequence_length=40"):
        runner({"token_ids": np.ones((1, MAX_LEN + 1), "int32")})
    with pytest.raises(ValueError, match=r"shape \(batch >= 1, sequence\)"):
        runner({"token_ids": np.ones((4,), "int32")})
    with pytest.raises(ValueError, match="`padding_mask` must have the shape"):
        runner({"token_ids": np.ones((2, 5), "int32"), "padding_mask": np.ones((2, 4), bool)})
    with pytest.raises(ValueError, match="must be a dict with `token_ids`"):
        runner(np.ones((2, 5), "int32"))
