"""Pusher: exports a blessed model to `saved_models/<name>/<version>/` for TF Serving; an unblessed one is not
pushed and the reason is printed. The export itself is atomic (`ltp_tf.serving.exporter`): a Pusher killed
midway leaves no version folder TF Serving would load, and the rerun pushes again."""

from __future__ import annotations

import os

from ltp_tf.atomic import write_json
from pipelines.component import ExecutionContext, ExecutorResult
from pipelines.components.evaluator import read_evaluation

PUSH_FILE = "push.json"


def run_pusher(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `trainer`, `stage`, `model_name`, `export_dir`, `verify_max_examples`.
    Inputs: `model`, `features`, `evaluation`. Output: `pushed` (a record of what was pushed)."""
    from ltp_tf.serving.exporter import export_checkpoint
    from pipelines.components.trainer import stage_checkpoint

    params = context.parameters
    evaluation = read_evaluation(context.inputs["evaluation"])
    if not evaluation["blessed"]:
        reason = "; ".join(evaluation["reasons"])
        print(f"[Pusher] not pushing: the model is not blessed ({reason})", flush=True)
        record = {"pushed": False, "reason": reason}
    else:
        checkpoint = stage_checkpoint(dict(params["trainer"]), context.inputs["features"], context.inputs["model"],
                                      params["stage"])
        result = export_checkpoint(checkpoint, params["model_name"], params["export_dir"], verify=True,
                                   verify_max_examples=params.get("verify_max_examples"))
        record = {"pushed": True, "path": result.path, "version": result.version,
                  "models_config": result.models_config}
    write_json(os.path.join(context.outputs["pushed"], PUSH_FILE), record)
    message = f"pushed {record['path']}" if record["pushed"] else f"not pushed: {record['reason']}"
    return ExecutorResult(properties={"pushed": record}, message=message)
