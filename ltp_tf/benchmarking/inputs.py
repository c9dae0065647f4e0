"""The inputs a benchmark times: dev batches and the runner's calibration sentences (long inputs made of dev text:
`ltp_tf.data.concatenated_windows`).

A batch is a dict of `(batch, seq)` int arrays `{"token_ids", "segment_ids", "padding_mask"}` (the features of
`ltp_tf.data.tokenize`), cut to its longest row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
