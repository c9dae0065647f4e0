"""One harness for every layer (in the spirit of keras-hub's `run_layer_test`).

It checks: config round trip (`get_config` -> `from_config` -> same config, same outputs with the same
weights), `.keras` save and load, an eager call, a symbolic call inside a functional model, one `fit`
step that changes the trainable weights, and a call under `mixed_float16` in which every floating-point
output has the compute dtype (float16), except the outputs the layer documents as float32.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

import keras
import numpy as np


def _as_numpy(tree):
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), tree)


def _assert_trees_close(a, b, atol=1e-5):
    flat_a, flat_b = keras.tree.flatten(_as_numpy(a)), keras.tree.flatten(_as_numpy(b))
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), atol=atol)


def run_layer_test(
    layer_cls: type,
    init_kwargs: dict[str, Any],
    inputs: tuple,
    symbolic_inputs: Callable[[], tuple],
    output_for_loss: Callable[[Any], Any],
    run_mixed_precision: bool = True,
    float32_outputs: tuple[str, ...] = (),
) -> keras.layers.Layer:
    """Runs the checks above and returns the built layer.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        inputs: positional call arguments (NumPy arrays).
        symbolic_inputs: returns `keras.Input`s matching `inputs`.
        output_for_loss: picks the tensor to train on from the layer's output.
        run_mixed_precision: also call the layer under `mixed_float16`.
        float32_outputs: keys of a dict output that stay float32 under mixed precision (by design, as the
            layer's docstring says); every other floating-point output must be float16.
    """
    layer = layer_cls(**init_kwargs)
    eager = layer(*inputs, training=False)

    # Config round trip: same config, same outputs with the same weights.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone(*inputs, training=False)
    clone.set_weights(layer.get_weights())
    _assert_trees_close(clone(*inputs, training=False), eager)

    # Symbolic call inside a functional model, which must match the eager call.
    symbolic = symbolic_inputs()
    model = keras.Model(symbolic, output_for_loss(layer(*symbolic)))
    _assert_trees_close(model(list(inputs) if len(inputs) > 1 else inputs[0], training=False),
                        output_for_loss(eager))

    # `.keras` save and load of that model.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    _assert_trees_close(restored(list(inputs) if len(inputs) > 1 else inputs[0], training=False),
                        output_for_loss(eager))

    # One fit step moves the trainable weights.
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = np.zeros(_as_numpy(output_for_loss(eager)).shape, dtype="float32")
    model.fit(list(inputs) if len(inputs) > 1 else inputs[0], target, batch_size=len(inputs[0]), epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.allclose(b, a) for b, a in zip(before, after)), "fit did not change any trainable weight"

    if run_mixed_precision:
        mixed = layer_cls(**{**init_kwargs, "dtype": "mixed_float16"})
        outputs = mixed(*inputs, training=False)
        hidden = output_for_loss(outputs)
        assert np.all(np.isfinite(_as_numpy(hidden).astype(np.float32)))
        named = outputs if isinstance(outputs, dict) else {"output": outputs}
        assert set(float32_outputs) <= set(named), f"unknown float32_outputs {float32_outputs}"
        for name, tensor in named.items():
            dtype = keras.backend.standardize_dtype(tensor.dtype)
            if "float" in dtype:
                expected = "float32" if name in float32_outputs else "float16"
                assert dtype == expected, f"output {name!r} is {dtype} under mixed_float16, expected {expected}"
        for variable in mixed.weights:
            assert variable.dtype == "float32", variable.path
    return layer
