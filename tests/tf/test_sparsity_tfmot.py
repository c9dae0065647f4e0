"""Our magnitude 2:4 mask equals tensorflow-model-optimization's for the same kernel (tfmot on tf_keras).

tfmot transposes a Dense kernel `(in, out)` to `(out, in)` and keeps the 2 largest of every 4 consecutive
weights along its last axis, i.e. along the *input* dimension: the grouping of our `"2:4"` pattern
(`ltp_tf.sparsity.patterns`). An EinsumDense attention kernel gives the same mask as tfmot's Dense on its
`(in, out)` matrix view.
"""

import keras
import numpy as np
import pytest
import tensorflow_model_optimization as tfmot
import tf_keras

from ltp_tf.sparsity import UpdateWeightPruning, WeightPruningGroup, find_plan, prune


def _tfmot_mask(matrix: np.ndarray) -> np.ndarray:
    """tfmot's 2:4 mask of a Dense kernel `matrix` (in, out), after one step with a zero learning rate."""
    inputs = tf_keras.Input((matrix.shape[0],))
    dense = tf_keras.layers.Dense(matrix.shape[1], use_bias=False)
    model = tf_keras.Model(inputs, dense(inputs))
    dense.set_weights([matrix])
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, sparsity_m_by_n=(2, 4), pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0))
    pruned.compile(optimizer=tf_keras.optimizers.SGD(0.0), loss="mse")
    pruned.fit(np.ones((2, matrix.shape[0]), "float32"), np.zeros((2, matrix.shape[1]), "float32"), verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    (mask,) = [w.numpy() for w in pruned.weights if "mask" in w.name]
    return mask


def _our_mask(layer: keras.layers.Layer, input_shape: tuple[int, ...], kernel: np.ndarray) -> np.ndarray:
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    layer.kernel.assign(kernel)
    prune(model, WeightPruningGroup(pattern="2:4", target_sparsity=0.5, pruning_type="magnitude",
                                    pruning_scope="local", start_step=0, end_step=0))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=False)
    model.fit(np.ones((2, *input_shape), "float32"), np.zeros((2, *model.output_shape[1:]), "float32"), verbose=0,
              callbacks=[UpdateWeightPruning()])
    (pruned,) = find_plan(model).kernels
    return pruned.kernel.view.to_matrix(keras.ops.convert_to_numpy(pruned.mask))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_2_in_4_mask_equals_tfmot(seed):
    kernel = np.random.default_rng(seed).normal(size=(32, 12)).astype("float32")
    ours = _our_mask(keras.layers.Dense(12, use_bias=False), (32,), kernel)
    reference = _tfmot_mask(kernel)
    assert (reference == 0).mean() == 0.5
    np.testing.assert_array_equal(ours, reference)


def test_attention_kernel_2_in_4_mask_equals_tfmot_on_its_matrix_view():
    kernel = np.random.default_rng(3).normal(size=(16, 2, 8)).astype("float32")  # (hidden, heads, head_dim)
    layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(5, 2, 8))
    ours = _our_mask(layer, (5, 16), kernel)
    np.testing.assert_array_equal(ours, _tfmot_mask(kernel.reshape(16, 16)))
