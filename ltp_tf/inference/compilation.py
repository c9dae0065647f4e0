"""Backend-specific compilation of pure Keras functions: `tf.function` (TensorFlow) or `jax.jit` (JAX).

Compiled functions are specialised to the shapes of their inputs (one program per shape), so callers
bucket shapes (`ltp_tf.inference.shape_buckets`). On other backends, functions run eagerly.
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras


def compile_function(fn: Callable, variables: Sequence[keras.Variable], jit_compile: bool) -> Callable:
    """Compiles `fn`, which reads `variables` (and no other state), for the current Keras backend.

    TensorFlow: a `tf.function` traced per input shape, XLA-compiled when `jit_compile` (else a plain
    graph). JAX: with `jit_compile`, `jax.jit` of a pure version of `fn` that takes the variables' values
    as arguments (no weights are baked into the program as constants); without it, eager. Other
    backends: eager.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tf_function_per_shape(fn, jit_compile)
    if backend == "jax" and jit_compile:
        import jax

        variables = list(variables)

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)
    return fn


def _tf_function_per_shape(fn: Callable, jit_compile: bool) -> Callable:
    """A `tf.function` whose concrete function per input shape is cached and called directly.

    Calling a concrete function skips `tf.function`'s argument matching (about half its call overhead),
    which matters when a forward pass is a handful of small programs.
    """
    import tensorflow as tf

    function = tf.function(fn, jit_compile=bool(jit_compile), autograph=False)
    concrete_functions: dict = {}

    def call(*args):
        key = tuple((tuple(arg.shape), arg.dtype) for arg in args)
        concrete = concrete_functions.get(key)
        if concrete is None:
            specs = [tf.TensorSpec(arg.shape, arg.dtype) for arg in args]
            concrete = concrete_functions[key] = function.get_concrete_function(*specs)
        return concrete(*args)

    return call
