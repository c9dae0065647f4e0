"""Reports: per stage (dev metrics, kept-token ratio per layer, FLOPs and reduction vs dense) and per run."""

from __future__ import annotations

import os
from typing import Any

from ltp_tf.training.evaluation import Evaluation


def stage_report(stage: str, checkpoint_dir: str, evaluations: dict[str, Evaluation], thresholds: list[float],
                 train_info: dict[str, Any], target_flops_reduction: float | None = None) -> dict[str, Any]:
    """The report of a finished stage; FLOPs and kept tokens are measured on the first dev split.

    With `target_flops_reduction`, `flops_target` states the target against the reduction achieved on dev.
    """
    split, first = next(iter(evaluations.items()))
    flops = first.flops
    examples = len(first.sequence_lengths)
    target = {} if target_flops_reduction is None else {"flops_target": {
        "target_reduction": target_flops_reduction, "achieved_reduction": flops.reduction,
        "relative_error": flops.reduction / target_flops_reduction - 1.0}}
    return {
        "stage": stage,
        "checkpoint": os.path.abspath(checkpoint_dir),
        "dev": {name: evaluation.metrics for name, evaluation in evaluations.items()},
        "measured_on": split,
        "kept_token_ratio": first.kept_ratio,
        "thresholds": thresholds,
        "flops": {"gflops_per_example": flops.total / examples / 1e9,
                  "dense_gflops_per_example": flops.dense_total / examples / 1e9,
                  "reduction": flops.reduction, "weight_density": first.weight_density,
                  "per_layer_gflops_per_example": [f / examples / 1e9 for f in flops.per_layer]},
        "mean_tokens": float(first.sequence_lengths.mean()),
        "train": train_info,
        **target,
    }


def run_report(config_dict: dict[str, Any], stage_reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report of a whole command: its config and the report of each stage it covered."""
    return {"config": config_dict, "stages": stage_reports}


def format_summary(report: dict[str, Any]) -> str:
    """A short table: one line per stage with the dev metrics, FLOPs reduction and kept ratio at the last layer."""
    lines = [f"{'stage':<10} {'dev metrics':<46} {'GFLOPs/ex':>9} {'vs dense':>9} {'kept@last':>9}"]
    for stage, values in report["stages"].items():
        metrics = ", ".join(f"{split}:{name}={value:.4f}" for split, split_metrics in values["dev"].items()
                            for name, value in split_metrics.items() if name != "combined_score")
        flops = values["flops"]
        target = values.get("flops_target")
        lines.append(f"{stage:<10} {metrics:<46} {flops['gflops_per_example']:>9.3f} "
                     f"{flops['reduction']:>8.2f}x {values['kept_token_ratio'][-1]:>9.3f}"
                     + (f"  (target {target['target_reduction']:g}x)" if target else ""))
    return "\n".join(lines)
