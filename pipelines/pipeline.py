"""`create_pipeline`: the GLUE LTP pipeline, built from typed arguments (no flags read here)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipelines.component import Component, OutputSpec, Pipeline
from pipelines.components.evaluator import run_evaluator
from pipelines.components.example_gen import run_example_gen
from pipelines.components.pusher import run_pusher
from pipelines.components.trainer import run_trainer
from pipelines.components.transform import run_transform


@dataclasses.dataclass(frozen=True)
class BlessingRule:
    """A model is pushed when its dev metric drops at most `max_metric_drop` points below the dense model's
    and its FLOPs reduction is at least `min_flops_reduction`."""

    max_metric_drop: float = 1.0
    min_flops_reduction: float = 1.5

    def __post_init__(self) -> None:
        if self.max_metric_drop < 0:
            raise ValueError(f"`max_metric_drop` must be >= 0 (points). Received: {self.max_metric_drop}")
        if self.min_flops_reduction < 1:
            raise ValueError(f"`min_flops_reduction` must be >= 1. Received: {self.min_flops_reduction}")


def create_pipeline(*, task: str, data_dir: str | None, model_dir: str, max_seq_length: int,
                    trainer: dict[str, Any], model_name: str, export_dir: str,
                    blessing: BlessingRule = BlessingRule(), max_train_examples: int | None = None,
                    max_eval_examples: int | None = None, latency_examples: int = 32,
                    verify_max_examples: int | None = None, data_source: str = "tsv") -> Pipeline:
    """ExampleGen -> Transform -> Trainer -> Evaluator -> Pusher for one GLUE task.

    Args:
        task: GLUE task name.
        data_dir: GLUE folder (glue_data layout), or with `data_source="tfds"` the TFDS data folder (None: TFDS's).
        model_dir: pretrained checkpoint folder (tokenizer vocabulary and weights).
        max_seq_length: tokenizer length.
        trainer: `TrainConfig` fields for the Trainer (task, stages, lr, epochs, thresholds, ...).
        model_name: TF Serving model name to push to; export_dir: the TF Serving model base folder.
        blessing: the rule the Evaluator applies.
        max_train_examples / max_eval_examples: deterministic slices taken in ExampleGen (None: all).
        latency_examples: dev examples the Evaluator times at batch 1.
        verify_max_examples: dev examples the Pusher's export verification compares (None: all).
        data_source: `"tsv"` (the glue_data folders) or `"tfds"` (tensorflow-datasets `glue/<task>`).
    """
    from ltp_tf.data.glue import get_task, split_path
    from ltp_tf.data.sources import DATA_SOURCES
    from ltp_tf.validation import check_one_of

    spec = get_task(task)
    check_one_of("data_source", data_source, DATA_SOURCES)
    for split in ("train", *spec.dev_splits) if data_source == "tsv" else ():
        path = split_path(spec, split, data_dir)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"GLUE {spec.folder} {split} split not found: expected {path}. Point --data_dir at "
                                    "a folder in the glue_data layout (<dir>/<TASK>/{train,dev}.tsv).")
    stages = list(trainer.get("stages", ("finetune", "soft", "hard")))
    if "finetune" not in stages:
        raise ValueError(f"The pipeline's Trainer must run the dense `finetune` stage (the Evaluator's baseline). "
                         f"Received: stages={stages}")
    trainer = {**trainer, "task": spec.name, "max_seq_length": max_seq_length, "model": model_dir,
               "stages": stages}
    candidate = stages[-1]
    example_gen = Component(
        "ExampleGen", run_example_gen,
        {"task": spec.name, "splits": ["train", *spec.dev_splits], "num_shards": 2,
         "max_examples": max_train_examples, "source": data_source,
         "tfds_data_dir": data_dir if data_source == "tfds" else None},
        external_inputs={"task_dir": os.path.join(data_dir, spec.folder)} if data_source == "tsv" else {},
        outputs={"examples": OutputSpec("Examples")})
    transform = Component(
        "Transform", run_transform, {"model_dir": model_dir, "max_seq_length": max_seq_length, "lowercase": True},
        inputs={"examples": ("ExampleGen", "examples")}, outputs={"features": OutputSpec("Features")})
    trainer_component = Component(
        "Trainer", run_trainer, {**trainer, "max_eval_examples": max_eval_examples},
        inputs={"features": ("Transform", "features")}, outputs={"model": OutputSpec("Model", resumable=True)})
    trainer_params = dict(trainer_component.parameters)
    evaluator = Component(
        "Evaluator", run_evaluator,
        {"trainer": trainer_params, "candidate_stage": candidate, "baseline_stage": "finetune",
         "max_metric_drop": blessing.max_metric_drop, "min_flops_reduction": blessing.min_flops_reduction,
         "latency_examples": latency_examples},
        inputs={"model": ("Trainer", "model"), "features": ("Transform", "features")},
        outputs={"evaluation": OutputSpec("ModelEvaluation")})
    pusher = Component(
        "Pusher", run_pusher,
        {"trainer": trainer_params, "stage": candidate, "model_name": model_name,
         "export_dir": os.path.abspath(export_dir), "verify_max_examples": verify_max_examples},
        inputs={"model": ("Trainer", "model"), "features": ("Transform", "features"),
                "evaluation": ("Evaluator", "evaluation")},
        outputs={"pushed": OutputSpec("PushedModel")})
    return Pipeline(f"glue_ltp_{spec.name}", (example_gen, transform, trainer_component, evaluator, pusher))
