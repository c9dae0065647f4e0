"""Process-wide settings of a run: seeds, the dtype policy, and the scope models are built in."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import keras
import numpy as np

from ltp_tf.training.train_config import TrainConfig


def has_accelerator() -> bool:
    """Whether Keras sees a GPU or TPU."""
    return any(not device.lower().startswith("cpu") for device in keras.distribution.list_devices())


def resolve_dtype_policy(mixed_precision: str) -> str:
    """`auto` is `mixed_bfloat16` on a GPU/TPU and `float32` on CPU; other values are taken as they are."""
    if mixed_precision == "auto":
        return "mixed_bfloat16" if has_accelerator() else "float32"
    return mixed_precision


def resolve_jit_compile(jit_compile: bool | None) -> bool:
    """`None` (auto): XLA on a GPU/TPU and always on JAX; TensorFlow's plain graph mode on CPU.

    On the 2-core CPU here, XLA made TensorFlow's MiniLM training slower (0.87 vs 0.63 CPU-seconds a step
    at SST-2 lengths, plus a compile for every batch width). JAX without jit would run op by op.
    """
    if jit_compile is not None:
        return jit_compile
    return keras.backend.backend() == "jax" or has_accelerator()


def model_scope(config: TrainConfig) -> ContextManager:
    """The scope models are built and compiled in: the distribution strategy's (`ltp_tf.distribution`).

    `--bs` is the global batch; it must split evenly over the replicas.
    """
    if config.distribution_strategy == "none":
        return contextlib.nullcontext()
    from ltp_tf.distribution import check_global_batch, create_distribution

    distribution = create_distribution(config.distribution_strategy, config.tpu_address)
    check_global_batch(config.bs, distribution)
    return distribution.scope()


def random_state_variables(model: keras.Model) -> list[keras.Variable]:
    """The state of every random generator in `model` (each dropout's `keras.random.SeedGenerator`), in order.

    `save_weights` leaves them out, and their initial seeds depend on what the process built before, so a
    stage seeds them itself (`seed_random_state`) and its resumable state saves them.
    """
    return [variable for variable in model.variables if variable.name == "seed_generator_state"]


def seed_random_state(model: keras.Model, seed: int, stage: str) -> None:
    """Starts every random generator of `model` from a seed derived from (`seed`, `stage`, its position).

    So a stage's dropout masks depend on its settings alone, not on the models built before it in this
    process (a stage started by a rerun draws the masks an uninterrupted run draws).
    """
    for position, variable in enumerate(random_state_variables(model)):
        entropy = [seed, *stage.encode(), position]
        value = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] >> 1)  # fits int32
        variable.assign(np.asarray([value, 0], dtype=variable.dtype))
