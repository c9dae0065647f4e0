"""`EvaluateAndSaveState`: evaluates on dev after every evaluation period and saves the resumable state.

`fit` runs one Keras "epoch" per evaluation period (a data epoch, or `--save_step` steps), so after each
one this callback adds the dev metrics (and, for pruning stages, kept-token ratios, FLOPs reduction and
thresholds) to the logs the progress bar and the CSV log show, saves the weights if they are the best on
dev so far, and saves the state a resumed run continues from (`resume_state`: the stage's work folder,
not its checkpoint, which `stages` writes when the stage ends).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from ltp_tf.data.features import LabeledFeatures
from ltp_tf.data.glue_metrics import is_better
from ltp_tf.training import resume_state
from ltp_tf.training.evaluation import Evaluation, Evaluator
from ltp_tf.training.modeling import thresholds


class EvaluateAndSaveState(keras.callbacks.Callback):
    """Evaluates, logs and saves state at the end of every evaluation period.

    Args:
        evaluator: evaluates the stage's model.
        dev: the split that selects the best weights.
        primary_metric: the metric to maximise.
        work_dir: the stage's work folder.
        progress: the state at the start of this `fit` (periods done, fingerprint, history).
        best: the best evaluation so far (from an interrupted run), or None.
        steps_per_period: training steps per evaluation period.
        log_pruning: add kept-token ratios, FLOPs reduction and thresholds to the logs.
    """

    def __init__(self, evaluator: Evaluator, dev: LabeledFeatures, primary_metric: str, work_dir: str,
                 progress: resume_state.Progress, best: resume_state.Best | None, steps_per_period: int,
                 log_pruning: bool):
        super().__init__()
        self.evaluator = evaluator
        self.dev = dev
        self.primary_metric = primary_metric
        self.work_dir = work_dir
        self.progress = progress
        self.best = best
        self.steps_per_period = steps_per_period
        self.log_pruning = log_pruning
        self.last_evaluation: Evaluation | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        evaluation = self.evaluator.evaluate(self.dev)
        logs["step"] = (epoch + 1) * self.steps_per_period
        for name, value in evaluation.metrics.items():
            logs[f"dev_{name}"] = value
        if self.log_pruning:
            logs["flops_reduction"] = evaluation.flops.reduction
            for i, ratio in enumerate(evaluation.kept_ratio):
                logs[f"kept_ratio/layer_{i}"] = ratio
            for i, value in enumerate(thresholds(self.model)):
                logs[f"threshold/layer_{i}"] = value
        history = self.progress.history + ({key: _plain(value) for key, value in logs.items()},)
        self.progress = dataclasses.replace(self.progress, periods_done=epoch + 1, history=history)
        resume_state.save_last(self.work_dir, self.model, self.progress)
        self.last_evaluation = evaluation
        score = evaluation.metrics[self.primary_metric]
        if is_better(score, None if self.best is None else self.best.score):
            self.best = resume_state.Best(period=epoch + 1, score=score, metrics=evaluation.metrics)
            resume_state.mark_last_as_best(self.work_dir, self.best)


def _plain(value) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(value)))
