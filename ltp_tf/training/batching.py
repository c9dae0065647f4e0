"""Length-bucketed, dynamically padded batches over NumPy features (no tf.data needed: runs on TF and JAX).

Every batch is cut to its longest sentence, rounded up to a multiple of `pad_to_multiple_of` (8 by
default), so XLA compiles one program per width instead of one per length. Training batches are always
full (`batch_size` rows), so the batch dimension never triggers a recompile either.

The order of training batches is a pure function of `(seed, global step)`: data epoch `e` shuffles the
examples with `seed` and `e`, groups them into pools of `BUCKET_POOL` batches, sorts each pool by length
(so sentences of similar length share a batch) and shuffles the batches. A run resumed at step `s`
therefore sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ltp_tf.data.features import LabeledFeatures

# Batches per length-sorting pool: large enough to group similar lengths, small enough to stay random.
BUCKET_POOL = 50


def padded_width(longest: int, multiple: int, limit: int) -> int:
    """`longest` rounded up to a multiple of `multiple`, at most `limit` (the features' width)."""
    return min(max(multiple, math.ceil(longest / multiple) * multiple), limit)


def make_inputs(data: LabeledFeatures, index: np.ndarray, multiple: int) -> dict[str, np.ndarray]:
    """The rows `index` of `data`, padded to their longest row rounded up to `multiple`."""
    features = data.features
    width = padded_width(int(features.lengths[index].max()), multiple, features.token_ids.shape[1])
    return {"token_ids": features.token_ids[index, :width], "segment_ids": features.segment_ids[index, :width],
            # int32, not bool: tf.distribute cannot aggregate boolean inputs across replicas.
            "padding_mask": features.padding_mask[index, :width].astype("int32")}


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of one data epoch's training batches, each exactly `batch_size` long.

    Every example appears once; when the count does not divide, the last batch is filled with random
    other examples of the same epoch.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    short = -len(order) % batch_size
    if short:
        order = np.concatenate([order, rng.choice(len(lengths), short, replace=short > len(lengths))])
    batches = []
    pool = batch_size * BUCKET_POOL
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class TrainBatches(keras.utils.PyDataset):
    """`(inputs, labels)` training batches for global steps `start_step ... start_step + num_steps - 1`.

    Args:
        data: the training split.
        batch_size: rows per batch.
        seed: shuffling seed.
        num_steps: how many batches this dataset yields.
        start_step: global step of the first batch (a resumed run starts past 0).
        pad_to_multiple_of: width granularity.
        example_inputs: extra per-example input arrays (first axis: the examples of `data`), added to each
            batch's inputs under their names by example index (e.g. cached teacher outputs); None: none.
    """

    def __init__(self, data: LabeledFeatures, batch_size: int, seed: int, num_steps: int, start_step: int = 0,
                 pad_to_multiple_of: int = 8, example_inputs: dict[str, np.ndarray] | None = None):
        super().__init__()
        if len(data) == 0:
            raise ValueError("Cannot train on an empty split.")
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.num_steps = num_steps
        self.start_step = start_step
        self.pad_to_multiple_of = pad_to_multiple_of
        self.example_inputs = dict(example_inputs or {})
        for name, values in self.example_inputs.items():
            if len(values) != len(data):
                raise ValueError(f"`example_inputs[{name!r}]` must have one row per training example ({len(data)}). "
                                 f"Received: {len(values)} rows")
        self._lengths = data.features.lengths
        self._epoch_cache: tuple[int, list[np.ndarray]] | None = None

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one pass over the data."""
        return steps_per_epoch(len(self.data), self.batch_size)

    def __len__(self) -> int:
        return self.num_steps

    def batch_indices(self, global_step: int) -> np.ndarray:
        epoch, position = divmod(global_step, self.steps_per_epoch)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            self._epoch_cache = (epoch, epoch_batches(self._lengths, self.batch_size, self.seed, epoch))
        return self._epoch_cache[1][position]

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_steps:
            raise IndexError(f"Batch {index} out of range [0, {self.num_steps})")
        rows = self.batch_indices(self.start_step + index)
        inputs = make_inputs(self.data, rows, self.pad_to_multiple_of)
        inputs.update({name: values[rows] for name, values in self.example_inputs.items()})
        return inputs, self.data.labels[rows]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return math.ceil(num_examples / batch_size)


def eval_batches(data: LabeledFeatures, batch_size: int, pad_to_multiple_of: int = 8):
    """Yields `(rows, inputs)` over `data` sorted by length; every batch has `batch_size` rows.

    The last batch is filled up by repeating its final row; `rows` holds only the real rows' indices,
    which are the first `len(rows)` outputs of the batch.
    """
    order = np.argsort(data.features.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        padded = np.concatenate([rows, np.repeat(rows[-1:], batch_size - len(rows))])
        yield rows, make_inputs(data, padded, pad_to_multiple_of)


def fit_input(dataset: TrainBatches):
    """What `model.fit` should get for `dataset` on the current backend.

    JAX and other backends take the `PyDataset` as is. On TensorFlow, Keras would infer the batch spec
    from the first two batches and reject later widths, so the batches are wrapped in a `tf.data`
    generator whose width is declared variable.
    """
    if keras.backend.backend() != "tensorflow":
        return dataset
    import tensorflow as tf

    x, y = dataset[0]
    signature = ({key: tf.TensorSpec((None,) * value.ndim, tf.as_dtype(value.dtype)) for key, value in x.items()},
                 tf.TensorSpec((None,) + y.shape[1:], tf.as_dtype(y.dtype)))
    generator = tf.data.Dataset.from_generator(lambda: (dataset[i] for i in range(len(dataset))),
                                               output_signature=signature)
    return generator.apply(tf.data.experimental.assert_cardinality(len(dataset))).prefetch(2)
