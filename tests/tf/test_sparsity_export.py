"""Sparse weights survive SavedModel export: `strip`, then `model.export`, and the zeros are in the kernels."""

import keras
import numpy as np
import tensorflow as tf

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier
from ltp_tf.sparsity import UpdateWeightPruning, WeightPruningGroup, find_plan, prune, strip


def test_stripped_model_exports_its_zeros(tmp_path):
    backbone = TokenPruningBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    max_sequence_length=16, dropout=0.0)
    model = TokenPruningClassifier(backbone, 2, dropout=0.0)
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 50, size=(16, 8)).astype("int32"),
         "segment_ids": np.zeros((16, 8), "int32"), "padding_mask": np.ones((16, 8), bool)}
    model(x)
    prune(model, [WeightPruningGroup(op_names=("feedforward",), pattern="2:4", target_sparsity=0.5, start_step=2,
                                     end_step=4, pruning_frequency=2),
                  WeightPruningGroup(op_names=("self_attention",), pattern="1xchannel", target_sparsity=0.5,
                                     pruning_type="magnitude", start_step=2, end_step=4, pruning_frequency=2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, rng.integers(0, 2, 16), batch_size=4, epochs=2, verbose=0, callbacks=[UpdateWeightPruning()])
    masks = {k.path: keras.ops.convert_to_numpy(k.mask) for k in find_plan(model).kernels}
    strip(model)
    kernels = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights if w.path in masks}
    assert len(kernels) == 12 and all(np.array_equal(v == 0, masks[p] == 0) for p, v in kernels.items())

    path = str(tmp_path / "sparse_saved_model")
    signature = {"token_ids": tf.TensorSpec((None, None), tf.int32),
                 "segment_ids": tf.TensorSpec((None, None), tf.int32),
                 "padding_mask": tf.TensorSpec((None, None), tf.bool)}
    model.export(path, format="tf_saved_model", input_signature=[signature], verbose=False)
    loaded = tf.saved_model.load(path)
    exported = {v.name.removesuffix(":0"): v.numpy() for v in loaded.variables}
    for name, values in kernels.items():
        np.testing.assert_array_equal(exported[name], values)
    zeros = sum((exported[name] == 0).sum() for name in kernels)
    assert zeros > 0.4 * sum(values.size for values in kernels.values())  # 0.5 targets, less whole-channel rounding
    np.testing.assert_allclose(loaded.serve(x).numpy(), keras.ops.convert_to_numpy(model(x)), atol=1e-5)
