"""The resumable state of a stage in training, kept in its work folder (`layout.work_dir`).

    <work>/last/    model.weights.h5, random_state.npz, progress.json
                                                       state after the last evaluation: weights, optimizer
                                                       and the dropout generators' state
    <work>/best/    model.weights.h5, best.json        best weights on dev so far
    <work>/metrics.csv                                 one row per evaluation (Keras CSVLogger)

`last/` and `best/` are each written to a temporary folder and renamed into place, so they are always
whole. The batch order needs no state: it is a function of the seed and the step (`batching`), so a
stage resumed from `last/` continues exactly as the uninterrupted run would have, dropout included.
`progress.json` records the evaluation periods done, the settings fingerprint (a resumed stage must
have been started with the same settings) and the logs of every evaluation so far.

This state is not a checkpoint (`ltp_tf.checkpoints`): the stage writes its checkpoint folder when it
ends, and then deletes the work folder (`stages.finalize`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any

import keras
import numpy as np

from ltp_tf.atomic import write_folder, write_json
from ltp_tf.training.runtime import random_state_variables

WEIGHTS_FILE = "model.weights.h5"
RANDOM_STATE_FILE = "random_state.npz"
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
    """Saves weights, optimizer variables (a compiled model's weights file holds them), random state and progress."""

    def write(folder: str) -> None:
        model.save_weights(os.path.join(folder, WEIGHTS_FILE))
        states = [keras.ops.convert_to_numpy(v) for v in random_state_variables(model)]
        np.savez(os.path.join(folder, RANDOM_STATE_FILE), *states)
        write_json(os.path.join(folder, PROGRESS_FILE), dataclasses.asdict(progress), sort_keys=True, default=float)

    write_folder(os.path.join(work_dir, "last"), write)


def load_progress(work_dir: str) -> Progress | None:
    """The progress of the last evaluation, or None if the stage has not been evaluated yet."""
    values = _read_json(os.path.join(work_dir, "last", PROGRESS_FILE))
    if values is None:
        return None
    return Progress(values["periods_done"], values["fingerprint"], tuple(values["history"]))


def restore_last(work_dir: str, model: keras.Model) -> None:
    """Loads the last weights, optimizer variables (step count included) and random state into a compiled `model`."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # so that loading restores its variables too
    model.load_weights(os.path.join(work_dir, "last", WEIGHTS_FILE))
    variables = random_state_variables(model)
    with np.load(os.path.join(work_dir, "last", RANDOM_STATE_FILE)) as saved:
        states = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(states) != len(variables):
        raise ValueError(f"{work_dir}/last holds {len(states)} random generator states; the model has "
                         f"{len(variables)}. Delete {work_dir} to restart the stage.")
    for variable, state in zip(variables, states):
        variable.assign(state)


def mark_last_as_best(work_dir: str, best: Best) -> None:
    """Records the state just saved by `save_last` as the best so far (a hard link: no second copy)."""

    def write(folder: str) -> None:
        source = os.path.join(work_dir, "last", WEIGHTS_FILE)
        try:
            os.link(source, os.path.join(folder, WEIGHTS_FILE))
        except OSError:  # a file system without hard links
            shutil.copyfile(source, os.path.join(folder, WEIGHTS_FILE))
        write_json(os.path.join(folder, BEST_FILE), dataclasses.asdict(best), sort_keys=True, default=float)

    write_folder(os.path.join(work_dir, "best"), write)


def load_best(work_dir: str) -> Best | None:
    values = _read_json(os.path.join(work_dir, "best", BEST_FILE))
    return None if values is None else Best(**values)


def best_weights_file(work_dir: str) -> str:
    return os.path.join(work_dir, "best", WEIGHTS_FILE)


def metrics_file(work_dir: str) -> str:
    return os.path.join(work_dir, METRICS_FILE)


def _read_json(path: str) -> dict[str, Any] | None:
    """The JSON object at `path`, or None when there is no file (written atomically: never half there)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
