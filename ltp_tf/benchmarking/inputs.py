"""The inputs a benchmark times: dev batches and the runner's calibration sentences (long inputs made of dev text:
`ltp_tf.data.concatenated_windows`).

A batch is a dict of `(batch, seq)` int arrays `{"token_ids", "segment_ids", "padding_mask"}` (the features of
`ltp_tf.data.tokenize`), cut to its longest row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from ltp_tf.checkpoints import Checkpoint
    from ltp_tf.data.glue import GlueTask


def batches(features: dict[str, np.ndarray], batch_size: int, count: int | None = None) -> list[dict[str, np.ndarray]]:
    """Consecutive batches of `features` (first `count` examples), each cut to its longest row."""
    from ltp_tf.data import trim_to_longest

    total = len(features["token_ids"]) if count is None else min(count, len(features["token_ids"]))
    return [trim_to_longest({key: value[start:min(start + batch_size, total)] for key, value in features.items()})
            for start in range(0, total, batch_size)]


def dev_and_long_inputs(preprocessor, task: GlueTask, dataset_names: Sequence[str], max_examples: int | None,
                        latency_examples: int, long_lengths: Sequence[int], long_examples: int,
                        data_dir: str | None) -> tuple[dict[str, tuple[dict[str, np.ndarray], int, int]], np.ndarray]:
    """What a benchmark measures: `{name: (features, examples for throughput, examples for latency)}` for
    the dev split of each of `dataset_names` (default: `task`'s) tokenized by `preprocessor`, then
    `long<length>` inputs of `long_examples` windows of the first dataset's dev text per length; and the dev
    labels of `task` (the examples timed for throughput; None if `task` is not among the datasets)."""
    from ltp_tf.data import concatenated_windows, get_task, read_split, tokenize

    datasets, labels = {}, None
    for name in dataset_names or [task.name]:
        data_task = get_task(name)
        examples = read_split(data_task, data_task.dev_splits[0], data_dir)
        features = tokenize(preprocessor, examples.texts).as_dict()
        features["padding_mask"] = features["padding_mask"].astype(np.int32)
        total = min(max_examples or len(examples), len(examples))
        datasets[name] = (features, total, min(latency_examples, total))
        if name == task.name:
            labels = np.asarray(examples.labels)[:total]
    for length in long_lengths:
        features = concatenated_windows(datasets[next(iter(datasets))][0], length, long_examples)
        datasets[f"long{length}"] = (features, len(features["token_ids"]), len(features["token_ids"]))
    return datasets, labels


def calibration_features(task: GlueTask, checkpoint: Checkpoint, count: int,
                         data_dir: str | None) -> tuple[dict[str, np.ndarray] | None, str]:
    """The first `count` training examples of `task`, tokenized as `checkpoint` tokenizes (the runner fits its
    capacities on them, not on dev), and a note of what was fitted; `(None, why not)` when `count` is 0 or
    there is no training split."""
    from ltp_tf.serving.text import training_features

    if not count:
        return None, "off (--calibration_examples=0): every call runs segment by segment"
    try:
        features = training_features(checkpoint, task, count, data_dir)
    except FileNotFoundError as error:
        return None, f"off: no training split to fit them on ({error})"
    return features, f"fitted on the first {len(features['token_ids'])} {task.name} training examples at batch 1"
