"""GLUE tasks in the standard `glue_data/<TASK>/{train,dev}.tsv` layout: task specs and TSV readers."""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
import sys

import numpy as np

# Environment variable that points every tool at another GLUE folder (flags override it).
GLUE_DIR_ENV = "LTP_TF_GLUE_DIR"


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """Where a task's columns are and what its labels mean.

    `text_columns` and `label_column` index the TSV row (negative: from the end); `labels` are the label
    strings in class order (empty for regression); `dev_splits` are the evaluation file stems.
    """

    name: str
    folder: str
    text_columns: tuple[int, ...]
    label_column: int
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    has_header: bool = True
    dev_splits: tuple[str, ...] = ("dev",)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_classes(self) -> int:
        """Output units: number of classes, 1 for regression."""
        return len(self.labels) or 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2


TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("cola", "CoLA", (3,), 1, ("0", "1"), ("matthews_corrcoef",), has_header=False),
        GlueTask("sst2", "SST-2", (0,), 1, ("0", "1"), ("accuracy",)),
        GlueTask("mrpc", "MRPC", (3, 4), 0, ("0", "1"), ("f1", "accuracy")),
        GlueTask("stsb", "STS-B", (7, 8), -1, (), ("pearson", "spearman")),
        GlueTask("qqp", "QQP", (3, 4), 5, ("0", "1"), ("f1", "accuracy")),
        GlueTask("mnli", "MNLI", (8, 9), -1, ("contradiction", "entailment", "neutral"), ("accuracy",),
                 dev_splits=("dev_matched", "dev_mismatched")),
        GlueTask("qnli", "QNLI", (1, 2), -1, ("entailment", "not_entailment"), ("accuracy",)),
        GlueTask("rte", "RTE", (1, 2), -1, ("entailment", "not_entailment"), ("accuracy",)),
    )
}


@dataclasses.dataclass(frozen=True)
class GlueExamples:
    """One split: texts (one tuple per text column) and labels (int class ids, or float scores)."""

    task: GlueTask
    split: str
    texts: tuple[tuple[str, ...], ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, count: int) -> "GlueExamples":
        """The first `count` examples."""
        return dataclasses.replace(self, texts=tuple(column[:count] for column in self.texts),
                                   labels=self.labels[:count])


def get_task(name: str) -> GlueTask:
    """The task for a name such as `sst2`, `SST-2` or `STS-B` (case and dashes ignored)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in TASKS:
        raise ValueError(f"`task` must be one of {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[key]


def default_glue_dir() -> str:
    """`$LTP_TF_GLUE_DIR` if set, else `../shared/data/glue` beside this repository (where the data lives here)."""
    if os.environ.get(GLUE_DIR_ENV):
        return os.environ[GLUE_DIR_ENV]
    repo_root = pathlib.Path(__file__).resolve().parents[2]
    return str(repo_root.parent / "shared" / "data" / "glue")


def split_path(task: GlueTask, split: str, data_dir: str | None = None) -> str:
    """Path of a split's TSV file."""
    return os.path.join(data_dir or default_glue_dir(), task.folder, f"{split}.tsv")


def read_split(task: GlueTask | str, split: str, data_dir: str | None = None) -> GlueExamples:
    """Reads `<data_dir>/<TASK>/<split>.tsv`.

    Every row must have as many tab-separated columns as the first one (the header, where the task has one):
    a tab inside a text would shift the columns after it, so such a row is an error, not a guess.

    Raises:
        FileNotFoundError: naming the path looked for, if the split is absent (no fallback).
        ValueError: naming file and line, for bytes that are not UTF-8, a row with another number of columns
            than the first, too few columns for the task, or an unknown label.
    """
    task = get_task(task) if isinstance(task, str) else task
    allowed = ("train",) + task.dev_splits
    if split not in allowed:
        raise ValueError(f"`split` must be one of {list(allowed)} for {task.name}. Received: split={split!r}")
    path = split_path(task, split, data_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"GLUE {task.folder} {split} split not found: expected {path}. Point --data_dir (or ${GLUE_DIR_ENV}) at "
            "a folder in the standard glue_data layout (<dir>/<TASK>/{train,dev}.tsv).")
    columns: list[list[str]] = [[] for _ in task.text_columns]
    labels: list = []
    csv.field_size_limit(sys.maxsize)
    width = None
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for line_number, row in enumerate(csv.reader(f, delimiter="\t", quotechar=None), start=1):
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    first = "header" if task.has_header else "first row"
                    raise ValueError(f"{path}:{line_number}: malformed {task.folder} row: {len(row)} tab-separated "
                                     f"columns, but the {first} has "
                                     f"{width}; every row needs {width} (a tab inside a text adds one). "
                                     f"Row: {row!r:.200}")
                if task.has_header and line_number == 1:
                    continue
                texts, label = parse_row(task, row, f"{path}:{line_number}")
                for column, text in zip(columns, texts):
                    column.append(text)
                labels.append(label)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text ({error.reason}); GLUE TSV "
                         "files must be UTF-8.") from None
    if not labels:
        raise ValueError(f"{path} has no examples.")
    dtype = np.float32 if task.is_regression else np.int32
    return GlueExamples(task=task, split=split, texts=tuple(tuple(c) for c in columns),
                        labels=np.asarray(labels, dtype=dtype))


def _first_undecodable_line(path: str) -> int:
    """The number of the first line of `path` that is not valid UTF-8."""
    line_number = 0
    with open(path, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return line_number
    return line_number


def parse_row(task: GlueTask, row: list[str], where: str) -> tuple[tuple[str, ...], int | float]:
    """Texts and label of one TSV row (split on tabs); `where` (e.g. `file:line`) prefixes errors."""
    needed = max(max(c if c >= 0 else -c - 1 for c in task.text_columns), abs(task.label_column)) + 1
    if len(row) < needed:
        raise ValueError(f"{where}: malformed {task.folder} row: {len(row)} columns, expected at least {needed}. "
                         f"Row: {row!r:.200}")
    texts = tuple(row[index] for index in task.text_columns)
    value = row[task.label_column].strip()
    if task.is_regression:
        try:
            return texts, float(value)
        except ValueError:
            raise ValueError(f"{where}: {task.folder} score must be a number. Received: {value!r}") from None
    if value not in task.labels:
        raise ValueError(f"{where}: {task.folder} label must be one of {list(task.labels)}. Received: {value!r}")
    return texts, task.labels.index(value)
