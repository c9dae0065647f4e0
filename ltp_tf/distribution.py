"""Training past one device: `tf.distribute` strategies on TensorFlow, Keras `DataParallel` on JAX.

`--bs` is the global batch; each of the N replicas gets `bs / N` examples and the gradients are averaged,
so a run on N devices follows the same loss trajectory as one device with the same global batch. The
learning rate is not rescaled: it belongs to the global batch, as in single-device runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from typing import Any, ContextManager

import keras

from ltp_tf.validation import check_one_of

STRATEGIES = ("none", "mirrored", "multi_worker_mirrored", "tpu", "data_parallel")
_TF_STRATEGIES = ("mirrored", "multi_worker_mirrored", "tpu")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A strategy name, its replica count, and the scope models must be built and compiled in."""

    name: str
    num_replicas: int
    _scope: Any = None

    def scope(self) -> ContextManager:
        return self._scope() if self._scope is not None else contextlib.nullcontext()


def create_distribution(name: str, tpu_address: str | None = None) -> Distribution:
    """Builds the distribution for a strategy name (see `STRATEGIES`).

    Raises:
        ValueError: unknown name, a strategy of the other backend, multi-worker without `TF_CONFIG`, or a
            global batch that the replicas cannot share (checked by `check_global_batch`).
    """
    check_one_of("distribution_strategy", name, STRATEGIES)
    backend = keras.backend.backend()
    if name == "none":
        return Distribution("none", 1)
    if name in _TF_STRATEGIES and backend != "tensorflow":
        raise ValueError(f"`distribution_strategy`={name!r} needs KERAS_BACKEND=tensorflow (running {backend!r}); "
                         "on JAX use 'data_parallel'.")
    if name == "data_parallel":
        if backend != "jax":
            raise ValueError("`distribution_strategy`='data_parallel' is Keras's JAX distribution; running "
                             f"{backend!r}. On TensorFlow use 'mirrored'.")
        devices = keras.distribution.list_devices()
        data_parallel = keras.distribution.DataParallel(devices=devices)
        return Distribution(name, len(devices), data_parallel.scope)

    import tensorflow as tf

    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "multi_worker_mirrored":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("`distribution_strategy`='multi_worker_mirrored' needs the TF_CONFIG environment "
                             "variable (cluster and task of this worker). Received: TF_CONFIG unset")
        json.loads(os.environ["TF_CONFIG"])  # a malformed TF_CONFIG fails here, loudly
        strategy = _multi_worker_mirrored_strategy_class()()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    return Distribution(name, strategy.num_replicas_in_sync, strategy.scope)


def _multi_worker_mirrored_strategy_class() -> type:
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """`reduce` as Keras 3's `fit` uses it across workers: leaf by leaf, scalars without an axis.

        Keras reduces a whole (dict) input batch at once to build the model (keras-team/keras#20329) and each
        scalar metric along `axis=0`; the stock strategy fails on both once there is more than one worker.
        """

        def reduce(self, reduce_op, value, axis):
            def reduce_leaf(leaf):
                rank = self.experimental_local_results(leaf)[0].shape.rank
                parent = super(MultiWorkerMirroredStrategy, self)
                return parent.reduce(reduce_op, leaf, axis if rank else None)

            return tf.nest.map_structure(reduce_leaf, value)

    return MultiWorkerMirroredStrategy


def check_global_batch(batch_size: int, distribution: Distribution) -> None:
    """The global batch must split evenly over the replicas."""
    if batch_size % distribution.num_replicas:
        raise ValueError(f"`--bs` (the global batch) must be divisible by the {distribution.num_replicas} replicas of "
                         f"{distribution.name!r}. Received: --bs={batch_size}")


def lost_worker_message(error: BaseException) -> str | None:
    """The one-line message for a collective aborted because another worker died, else None.

    `multi_worker_mirrored` workers send heartbeats to the cluster's coordination service; when one stops (killed,
    preempted, crashed), TensorFlow aborts the collectives of every other worker with `UnavailableError` naming
    the dead task, instead of letting them wait for it forever.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.UnavailableError):
        return None
    detail = " ".join(str(error.message).split())
    return (f"a worker of the multi_worker_mirrored cluster stopped, so training stopped on this worker too; "
            f"restart every worker (TensorFlow: {detail})")
