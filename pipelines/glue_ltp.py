"""Runs the GLUE LTP pipeline end to end: `python -m pipelines.glue_ltp --task=sst2 [training flags]`.

Every flag of `python -m ltp_tf.train` is accepted for the Trainer (the same definitions,
`ltp_tf.training.flags`; `--flagfile=glue_sst2.flags` finds the shipped flagfile), plus the pipeline's own.
Rerunning the same command skips finished components; a killed run resumes.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from ltp_tf.training.flags import config_from_flags, define_flags, parse_flags
from pipelines.local_runner import LocalRunner
from pipelines.pipeline import BlessingRule, create_pipeline

define_flags()  # the training flags
_ROOT = flags.DEFINE_string("pipeline_root", None, "Folder of artifacts and metadata.sqlite "
                            "(default: pipeline_root/glue_ltp_<task>).")
_MODEL_NAME = flags.DEFINE_string("model_name", None, "TF Serving model name (default: <task>_ltp).")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "saved_models", "TF Serving model base folder the Pusher writes to.")
_MAX_DROP = flags.DEFINE_float("max_metric_drop", 1.0, "Blessing: largest allowed dev-metric drop, in points.")
_MIN_REDUCTION = flags.DEFINE_float("min_flops_reduction", 1.5, "Blessing: smallest FLOPs reduction.")
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", 32, "Dev examples the Evaluator times at batch 1.")
_VERIFY_EXAMPLES = flags.DEFINE_integer("verify_max_examples", None, "Dev examples the Pusher's verification "
                                        "compares (default: the whole dev set).")
_BEAM_ARGS = flags.DEFINE_list("beam_pipeline_args", [], "Beam options for ExampleGen and Transform, e.g. "
                               "--beam_pipeline_args=--runner=DirectRunner,--direct_num_workers=2.")

# Settings the pipeline owns: data and features come from ExampleGen/Transform, outputs from the root.
_PIPELINE_OWNED = ("output_dir", "data_dir", "data_source", "features_dir", "max_train_examples", "max_eval_examples", "model",
                   "max_seq_length", "restore")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"pipelines.glue_ltp: error: unexpected arguments {argv[1:]}")
    try:
        config = config_from_flags(flags.FLAGS)
        from ltp_tf.data.glue import default_glue_dir
        from ltp_tf.models.pretrained import packaged_minilm_path

        trainer = {k: v for k, v in config.to_dict().items() if k not in _PIPELINE_OWNED}
        pipeline = create_pipeline(
            task=config.task, data_source=config.data_source,
            data_dir=config.data_dir or (default_glue_dir() if config.data_source == "tsv" else None),
            model_dir=config.model or packaged_minilm_path(), max_seq_length=config.max_seq_length,
            trainer=trainer, model_name=_MODEL_NAME.value or f"{config.task_spec.name}_ltp",
            export_dir=_EXPORT_DIR.value,
            blessing=BlessingRule(_MAX_DROP.value, _MIN_REDUCTION.value),
            max_train_examples=config.max_train_examples, max_eval_examples=config.max_eval_examples,
            latency_examples=_LATENCY_EXAMPLES.value, verify_max_examples=_VERIFY_EXAMPLES.value)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"pipelines.glue_ltp: error: {error}")
    root = _ROOT.value or os.path.join("pipeline_root", pipeline.name)
    results = LocalRunner(root, tuple(_BEAM_ARGS.value)).run(pipeline)
    print(f"\nPipeline {pipeline.name} at {root}:")
    for result in results:
        print(f"  {result.component:<11} {result.status:<9} {result.seconds:7.1f} s  {result.message or ''}")
    print(f"Lineage: python -m pipelines.lineage --pipeline_root={root}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
