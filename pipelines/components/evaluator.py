"""Evaluator: dev metric, kept tokens, FLOPs and measured latency of the pruned model against the dense one,
and the blessing rule (metric drop at most `max_metric_drop` points, FLOPs reduction at least
`min_flops_reduction`)."""

from __future__ import annotations

import json
import os

import numpy as np

from ltp_tf.atomic import write_json
from pipelines.component import ExecutionContext, ExecutorResult

EVALUATION_FILE = "evaluation.json"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"


def _batch1_latency_ms(models: dict, features: dict[str, np.ndarray], count: int) -> dict[str, float]:
    """Median batch-1 latency of each model through the token-dropping runner (compiled per length bucket,
    warmed up), the models timed in turns on the same `count` examples."""
    from ltp_tf.benchmarking.inputs import batches
    from ltp_tf.benchmarking.timing import median_ms, time_after_warm_up
    from ltp_tf.inference import TokenDroppingRunner

    runners = {role: TokenDroppingRunner(model, length_bucket=8) for role, model in models.items()}
    return median_ms(time_after_warm_up(runners, batches(features, 1, count)))


def run_evaluator(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `trainer` (the Trainer's parameters), `candidate_stage`, `baseline_stage`,
    `max_metric_drop` (points), `min_flops_reduction`, `latency_examples`. Inputs: `model`, `features`."""
    from ltp_tf import checkpoints
    from ltp_tf.data.glue import get_task
    from ltp_tf.data.glue_metrics import primary_metric
    from pipelines.components.trainer import stage_checkpoint

    params = context.parameters
    trainer_params = dict(params["trainer"])
    task = get_task(trainer_params["task"])
    metric = primary_metric(task)
    reports = {}
    models = {}
    for role in ("candidate", "baseline"):
        stage = params[f"{role}_stage"]
        path = stage_checkpoint(trainer_params, context.inputs["features"], context.inputs["model"], stage)
        loaded = checkpoints.load_checkpoint(path)
        reports[role] = loaded.metadata["report"]
        models[role] = loaded.model
    split = task.dev_splits[0]
    scores = {role: float(reports[role]["dev"][split][metric]) for role in reports}
    drop_points = 100.0 * (scores["baseline"] - scores["candidate"])
    flops_reduction = float(reports["candidate"]["flops"]["reduction"])

    with np.load(os.path.join(context.inputs["features"], f"{split}.npz")) as arrays:
        count = min(int(params.get("latency_examples", 32)), len(arrays["labels"]))
        features = {k: arrays[k][:count] for k in ("token_ids", "segment_ids", "padding_mask")}
    latency = _batch1_latency_ms(models, features, count)

    reasons = []
    if drop_points > float(params["max_metric_drop"]):
        reasons.append(f"{metric} dropped {drop_points:.2f} points (allowed: {params['max_metric_drop']})")
    if flops_reduction < float(params["min_flops_reduction"]):
        reasons.append(f"FLOPs reduction {flops_reduction:.2f}x (required: {params['min_flops_reduction']}x)")
    evaluation = {
        "task": task.name, "metric": metric, "split": split, "scores": scores, "metric_drop_points": drop_points,
        "flops_reduction": flops_reduction, "kept_token_ratio": reports["candidate"]["kept_token_ratio"],
        "batch1_latency_ms": latency, "measured_speedup": latency["baseline"] / latency["candidate"],
        "latency_examples": count, "blessed": not reasons, "reasons": reasons,
    }
    out = context.outputs["evaluation"]
    write_json(os.path.join(out, EVALUATION_FILE), evaluation)
    with open(os.path.join(out, NOT_BLESSED_FILE if reasons else BLESSED_FILE), "w", encoding="utf-8") as f:
        f.write("; ".join(reasons) + "\n")
    message = "blessed" if not reasons else "not blessed: " + "; ".join(reasons)
    return ExecutorResult(properties={"evaluation": evaluation}, message=message)


def read_evaluation(path: str) -> dict:
    with open(os.path.join(path, EVALUATION_FILE), encoding="utf-8") as f:
        return json.load(f)
