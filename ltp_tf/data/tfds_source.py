"""GLUE from `tensorflow-datasets` (`glue/<task>`), as a second source beside the TSV folders.

For users who have the TFDS copies prepared (`tfds build glue/sst2`, or a `--data_dir` holding them): nothing
is downloaded unless TFDS itself is allowed to. Splits map `train` -> `train`, `dev` -> `validation`
(MNLI: `dev_matched` -> `validation_matched`, `dev_mismatched` -> `validation_mismatched`); labels map onto
this package's class order by name where TFDS names them as the TSV files do (QNLI, RTE, MNLI), else by index
(the binary tasks, whose TSV labels are 0/1); STS-B scores are floats.
"""

from __future__ import annotations

import numpy as np

from ltp_tf.data.glue import GlueExamples, GlueTask, get_task

# TFDS feature names of each task's text columns, in the TSV readers' order.
TEXT_FEATURES = {
    "cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
    "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"), "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"), "rte": ("sentence1", "sentence2"),
}
_SPLITS = {"train": "train", "dev": "validation", "dev_matched": "validation_matched",
           "dev_mismatched": "validation_mismatched"}


def tfds_split_name(task: GlueTask, split: str) -> str:
    allowed = ("train",) + task.dev_splits
    if split not in allowed:
        raise ValueError(f"`split` must be one of {list(allowed)} for {task.name}. Received: split={split!r}")
    return _SPLITS[split]


def read_tfds_split(task: GlueTask | str, split: str, data_dir: str | None = None) -> GlueExamples:
    """Reads `glue/<task>` from tensorflow-datasets into the same `GlueExamples` the TSV reader gives.

    Raises:
        ImportError: tensorflow-datasets is not installed (naming the package to install).
    """
    task = get_task(task) if isinstance(task, str) else task
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError("`--data_source=tfds` needs tensorflow-datasets: pip install tensorflow-datasets") from error
    dataset, info = tfds.load(f"glue/{task.name}", split=tfds_split_name(task, split), data_dir=data_dir,
                              with_info=True, shuffle_files=False)
    label_map = _label_map(task, info.features["label"])
    columns: list[list[str]] = [[] for _ in TEXT_FEATURES[task.name]]
    labels = []
    for example in tfds.as_numpy(dataset):
        for column, name in zip(columns, TEXT_FEATURES[task.name]):
            column.append(example[name].decode("utf-8"))
        labels.append(float(example["label"]) if task.is_regression else label_map[int(example["label"])])
    if not labels:
        raise ValueError(f"tensorflow-datasets glue/{task.name} split {split!r} has no examples.")
    return GlueExamples(task=task, split=split, texts=tuple(tuple(c) for c in columns),
                        labels=np.asarray(labels, dtype=np.float32 if task.is_regression else np.int32))


def _label_map(task: GlueTask, feature) -> dict[int, int]:
    """TFDS class index -> this package's class index."""
    if task.is_regression:
        return {}
    names = list(getattr(feature, "names", []))
    if names and set(names) == set(task.labels):
        return {i: task.labels.index(name) for i, name in enumerate(names)}
    return {i: i for i in range(task.num_classes)}
