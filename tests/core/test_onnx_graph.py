"""The fused ONNX graph (`ltp_tf.serving.onnx_graph`) on random models: equals the hard-masked Keras model for
every compaction schedule and length-gate setting, in onnxruntime. Backend-agnostic (reads Keras weights)."""

import keras
import numpy as np
import onnxruntime
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.data import get_task
from ltp_tf.serving.onnx_export import session_options
from ltp_tf.serving.onnx_graph import build_onnx_graph, supports

THRESHOLD = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.3, score_reference_length=8)
INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _classifier(config, num_classes=3, activation="gelu_exact"):
    backbone = TokenPruningBackbone(vocabulary_size=60, num_layers=4, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    max_sequence_length=40, pruning_config=config, activation=activation)
    model = TokenPruningClassifier(backbone, num_classes=num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    return model


def _inputs(lengths, seq_len, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    ids = rng.integers(1, 60, size=mask.shape).astype("int32") * mask
    segments = (np.arange(seq_len)[None, :] >= (lengths[:, None] // 2)).astype("int32") * mask
    return {"token_ids": ids.astype("int32"), "segment_ids": segments.astype("int32"),
            "padding_mask": mask.astype("int32")}


def _masked(model, inputs):
    outputs = model.backbone({**inputs, "padding_mask": inputs["padding_mask"].astype(bool)}, training=False)
    return {"logits": keras.ops.convert_to_numpy(model.output_dense(outputs["pooled_output"])),
            "kept_tokens": np.rint(keras.ops.convert_to_numpy(outputs["kept_tokens"])).astype("int32")}


def _run(model, task, inputs, **kwargs):
    session = onnxruntime.InferenceSession(build_onnx_graph(model, task, **kwargs).SerializeToString(),
                                           session_options(1), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {name: inputs[name] for name in INPUTS})))


@pytest.fixture(scope="module")
def pruned():
    keras.utils.set_random_seed(3)
    return _classifier(THRESHOLD)


@pytest.mark.parametrize("schedule", [
    {}, {"compact_layers": []}, {"compact_layers": [2]}, {"compact_min_length": 6}, {"compact_min_length": 1000}])
def test_fused_graph_equals_hard_masking(pruned, schedule):
    task = get_task("mnli")  # 3 classes
    for lengths, seq_len in (([13], 13), ([3], 3), ([1], 1), ([20, 4, 11, 1], 24), ([5, 5], 9)):
        inputs = _inputs(lengths, seq_len, seed=seq_len)
        reference = _masked(pruned, inputs)
        outputs = _run(pruned, task, inputs, **schedule)
        np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])
        np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=2e-5)
        np.testing.assert_allclose(outputs["probabilities"], keras.ops.convert_to_numpy(
            keras.ops.softmax(reference["logits"])), atol=2e-5)
        np.testing.assert_array_equal(outputs["label"], reference["logits"].argmax(-1))
    assert (reference["kept_tokens"][:, -1] < np.asarray(lengths)).any()  # the model really prunes


def test_dense_and_tanh_gelu_and_regression():
    keras.utils.set_random_seed(4)
    model = _classifier(TokenPruningConfig(), num_classes=1, activation="gelu_approximate")
    inputs = _inputs([9, 2, 6], 9)
    graph = build_onnx_graph(model, get_task("stsb"))
    assert {"Attention", "SkipLayerNormalization", "FastGelu", "EmbedLayerNormalization"} <= {
        node.op_type for node in graph.graph.node}
    outputs = _run(model, get_task("stsb"), inputs)
    reference = _masked(model, inputs)
    np.testing.assert_allclose(outputs["score"], reference["logits"][:, 0], atol=2e-5)
    np.testing.assert_array_equal(outputs["kept_tokens"], [[9] * 4, [2] * 4, [6] * 4])


def test_unsupported_models_and_bad_arguments(pruned):
    topk = _classifier(TokenPruningConfig(prune_mode="topk", token_keep_rate=0.5))
    assert "top-k" in supports(topk)
    with pytest.raises(ValueError, match="fused ONNX graph"):
        build_onnx_graph(topk, get_task("mnli"))
    with pytest.raises(ValueError, match="compact_min_length"):
        build_onnx_graph(pruned, get_task("mnli"), compact_min_length=-1)
    with pytest.raises(ValueError, match="compact_layers"):
        build_onnx_graph(pruned, get_task("mnli"), compact_layers=[0])


def test_int8_quantization_skips_the_standard_attention_nodes(pruned, tmp_path):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ltp_tf.serving.onnx_graph import float_only_nodes

    graph = build_onnx_graph(pruned, get_task("mnli"))
    skipped = float_only_nodes(graph)
    assert len(skipped) == sum(block.prunes for block in pruned.backbone.transformer_layers)
    onnx.save(graph, tmp_path / "float.onnx")
    quantize_dynamic(tmp_path / "float.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QInt8,
                     nodes_to_exclude=skipped, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    quantized = onnx.load(tmp_path / "int8.onnx")
    assert sorted(float_only_nodes(quantized)) == sorted(skipped)
    assert any(node.op_type == "MatMulInteger" for node in quantized.graph.node)  # the weights are int8
    session = onnxruntime.InferenceSession(quantized.SerializeToString(), session_options(1),
                                           providers=["CPUExecutionProvider"])
    inputs = _inputs([20, 4, 11, 1], 24)
    logits, = session.run(["logits"], {name: inputs[name] for name in INPUTS})
    assert np.isfinite(logits).all() and logits.shape == (4, 3)
