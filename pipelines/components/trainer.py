"""Trainer: the training CLI's stages (dense fine-tune, soft, hard, or a baseline) on Transform's features.

It calls `ltp_tf.training.training_run.run` — the same code as `python -m ltp_tf.train` — with
`--features_dir` set to Transform's output and `--output_dir` set to its own (resumable) output, so a
Trainer killed mid-stage continues from that stage's last evaluation when the pipeline is rerun.
"""

from __future__ import annotations

import os
from typing import Any

from pipelines.component import ExecutionContext, ExecutorResult


def train_config(parameters: dict[str, Any], features_dir: str, output_dir: str):
    """The `TrainConfig` of a Trainer execution."""
    from ltp_tf.training.train_config import TrainConfig

    return TrainConfig.from_dict({**parameters, "features_dir": features_dir, "output_dir": output_dir})


def run_trainer(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `TrainConfig` fields (task, stages, lr, ...). Inputs: `features`. Output: `model`."""
    from ltp_tf.training.training_run import run

    config = train_config(dict(context.parameters), context.inputs["features"], context.outputs["model"])
    report = run(config)
    summary = {stage: {"dev": values["dev"], "flops_reduction": values["flops"]["reduction"]}
               for stage, values in report["stages"].items()}
    return ExecutorResult(properties={"model": {"stages": list(config.training_stages), "summary": summary}})


def stage_checkpoint(parameters: dict[str, Any], features_dir: str, model_dir: str, stage: str) -> str:
    """Where the Trainer's output at `model_dir` holds the checkpoint of `stage`."""
    from ltp_tf.training import layout

    path = layout.stage_dir(train_config(parameters, features_dir, model_dir), stage)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"The Trainer output has no {stage} checkpoint: expected {path}")
    return path
