"""The resumable state of a stage in training, kept in its work folder (`layout.work_dir`).

    <work>/last/    model.weights.h5, progress.json    state after the last evaluation (weights and optimizer)
    <work>/best/    model.weights.h5, best.json        best weights on dev so far
    <work>/metrics.csv                                 one row per evaluation (Keras CSVLogger)

`last/` and `best/` are each written to a temporary folder and renamed into place, so they are always
whole. `progress.json` records the evaluation periods done, the settings fingerprint (a resumed stage
must have been started with the same settings) and the logs of every evaluation so far.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any

import keras

from ltp_tf.atomic import write_folder

WEIGHTS_FILE = "model.weights.h5"
PROGRESS_FILE = "progress.json"
BEST_FILE = "best.json"
METRICS_FILE = "metrics.csv"


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a stage stands: evaluation periods done and the logs of each."""

    periods_done: int
    fingerprint: str
    history: tuple[dict[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class Best:
    """The best evaluation so far: its period, primary score and metrics."""

    period: int
    score: float
    metrics: dict[str, Any]


def save_last(work_dir: str, model: keras.Model, progress: Progress) -> None:
    """Saves weights, optimizer variables (a compiled model's weights file holds them) and progress."""

    def write(folder: str) -> None:
        model.save_weights(os.path.join(folder, WEIGHTS_FILE))
        _write_json(os.path.join(folder, PROGRESS_FILE), dataclasses.asdict(progress))

    write_folder(os.path.join(work_dir, "last"), write)


def load_progress(work_dir: str) -> Progress | None:
    """The progress of the last evaluation, or None if the stage has not been evaluated yet."""
    path = os.path.join(work_dir, "last", PROGRESS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    return Progress(values["periods_done"], values["fingerprint"], tuple(values["history"]))


def restore_last(work_dir: str, model: keras.Model) -> None:
    """Loads the last weights and optimizer variables (step count included) into a compiled `model`."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # so that loading restores its variables too
    model.load_weights(os.path.join(work_dir, "last", WEIGHTS_FILE))


def mark_last_as_best(work_dir: str, best: Best) -> None:
    """Records the state just saved by `save_last` as the best so far (a hard link: no second copy)."""

    def write(folder: str) -> None:
        source = os.path.join(work_dir, "last", WEIGHTS_FILE)
        try:
            os.link(source, os.path.join(folder, WEIGHTS_FILE))
        except OSError:  # a file system without hard links
            shutil.copyfile(source, os.path.join(folder, WEIGHTS_FILE))
        _write_json(os.path.join(folder, BEST_FILE), dataclasses.asdict(best))

    write_folder(os.path.join(work_dir, "best"), write)


def load_best(work_dir: str) -> Best | None:
    path = os.path.join(work_dir, "best", BEST_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return Best(**json.load(f))


def best_weights_file(work_dir: str) -> str:
    return os.path.join(work_dir, "best", WEIGHTS_FILE)


def metrics_file(work_dir: str) -> str:
    return os.path.join(work_dir, METRICS_FILE)


def _write_json(path: str, values: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True, default=float)
