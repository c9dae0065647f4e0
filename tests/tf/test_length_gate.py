"""The length gate of an export (`compact_min_length`): the SavedModel's token-id signature and the fused ONNX
graph give the hard-masked model's outputs on both sides of the gate, and the export records the gate."""

import json
import os

import numpy as np
import tensorflow as tf

from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.serving.exporter import EXPORT_INFO_FILE, EXTRA_DIR, export_checkpoint
from ltp_tf.serving.onnx_export import OnnxPredictor
from ltp_tf.serving.verify import keras_reference
from tests.tf.serving_helpers import tiny_checkpoint


def test_gated_export_equals_hard_masking_below_and_above_the_gate(tmp_path):
    checkpoint_path = tiny_checkpoint(str(tmp_path / "sst2"), task="sst2")
    result = export_checkpoint(checkpoint_path, "gated", str(tmp_path / "saved_models"), onnx=True,
                               text_signature=False, compact_min_length=6)
    with open(os.path.join(result.path, EXTRA_DIR, EXPORT_INFO_FILE)) as f:
        info = json.load(f)
    assert info["compact_min_length"] == 6 and info["onnx_graph"] == "fused"
    model = load_checkpoint(checkpoint_path).model
    signature = tf.saved_model.load(result.path).signatures["token_ids"]
    onnx = OnnxPredictor(result.onnx_path, threads=1)
    rng = np.random.default_rng(0)
    for lengths in ([3, 2], [12, 5, 9], [16]):  # all below the gate, the longest above it, above it
        seq_len = max(lengths)
        mask = (np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]).astype("int32")
        features = {"token_ids": rng.integers(5, 13, size=mask.shape).astype("int32") * mask,
                    "segment_ids": np.zeros_like(mask), "padding_mask": mask}
        reference = keras_reference(model, features)
        saved = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in features.items()}).items()}
        for outputs in (saved, onnx(features)):
            np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=1e-5)
            np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])
