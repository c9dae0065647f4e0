"""Extension points of a training stage, for features layered on top of token pruning.

Weight pruning and distillation (`ltp_tf.sparsity`) plug in here without touching the stage runner:
callbacks that run with `fit` (e.g. updating sparsity masks after every step), a model transform applied
before compiling (e.g. wrapping kernels with masks), a loss transform (e.g. adding a distillation term)
and a transform applied before the checkpoint is written (e.g. baking masks into the kernels).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras

from ltp_tf.training.train_config import StageSettings, TrainConfig


@dataclasses.dataclass(frozen=True)
class StageContext:
    """What a plugin may need to know about the stage it runs in."""

    config: TrainConfig
    stage: str
    settings: StageSettings
    checkpoint_dir: str
    work_dir: str
    steps_per_epoch: int
    total_steps: int


def _no_callbacks(context: StageContext) -> Sequence[keras.callbacks.Callback]:
    del context
    return ()


@dataclasses.dataclass(frozen=True)
class StagePlugins:
    """Hooks called by `ltp_tf.training.stages.run_stage` (each defaults to doing nothing).

    Attributes:
        callbacks: returns extra Keras callbacks for the stage's `fit`; they run before evaluation.
        model_transform: `(model, context) -> model` applied to the stage's model before compiling.
        loss_transform: `(loss, context) -> loss` applied to the task loss before compiling.
        save_transform: `(student, context) -> TokenPruningClassifier` applied before the checkpoint is written
            (`student`: the trained classifier, taken out of a `TokenPruningTrainer` when the stage used one).
    """

    callbacks: Callable[[StageContext], Sequence[keras.callbacks.Callback]] = _no_callbacks
    model_transform: Callable[[keras.Model, StageContext], keras.Model] | None = None
    loss_transform: Callable[[keras.losses.Loss, StageContext], keras.losses.Loss] | None = None
    save_transform: Callable[[keras.Model, StageContext], keras.Model] | None = None
