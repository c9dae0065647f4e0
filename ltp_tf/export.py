"""Export a checkpoint for TF Serving (and ONNX): a new version folder plus `models.config`.

    python -m ltp_tf.export --checkpoint=<checkpoint folder> --name=sst2 \
        [--export_dir=saved_models] [--onnx] [--verify] [--verify_max_examples=N] [--xla_buckets]

writes `saved_models/sst2/<next version>/` atomically and regenerates `saved_models/models.config`.
See docs/export_and_serving.md for the signatures, TF Serving commands and request examples.
"""

from __future__ import annotations

import sys

from absl import app, flags

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint folder (model.keras, vocab.txt, checkpoint.json).")
_NAME = flags.DEFINE_string("name", None, "Model name: the folder under --export_dir and TF Serving's model name.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", "saved_models", "Folder of all exported models.")
_ONNX = flags.DEFINE_boolean("onnx", False, "Also write the token-id signature as ONNX (assets.extra/model.onnx).")
_TEXT_SIGNATURE = flags.DEFINE_boolean(
    "text_signature", True, "Include the raw-string signature (needs TensorFlow Text ops in the server).")
_VERIFY = flags.DEFINE_boolean("verify", False, "Verify against the Keras model on the dev set before publishing.")
_VERIFY_MAX_EXAMPLES = flags.DEFINE_integer("verify_max_examples", None,
                                            "Verify on the first N dev examples (default: all).", lower_bound=1)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder for --verify and --xla_buckets "
                                 "(default: ../shared/data/glue).")
_COMPACT_MIN_LENGTH = flags.DEFINE_integer(
    "compact_min_length", 0, "Length gate: inputs shorter than this run the mask-only schedule (same outputs, no "
    "token gathers); 0 = always remove pruned tokens. Pick it with `python -m ltp_tf.benchmark`.", lower_bound=0)
_XLA_BUCKETS = flags.DEFINE_boolean(
    "xla_buckets", False, "Run the encoder as XLA programs per length bucket at static per-layer capacities "
    "(fitted on training examples), falling back to the dynamic graph when an input keeps more; same outputs. "
    "TF Serving needs --xla_cpu_compilation_enabled=true.")
_XLA_FIT_EXAMPLES = flags.DEFINE_integer(
    "xla_fit_examples", 1000, "With --xla_buckets: fit the capacities on the first N training examples of the "
    "checkpoint's task (from --data_dir); 0 = fit none (nothing is cut).", lower_bound=0)
_XLA_LENGTH_BUCKET = flags.DEFINE_integer(
    "xla_length_bucket", 8, "With --xla_buckets: lengths are rounded up to a power of two below this and to a "
    "multiple of it above (the runner's buckets).", lower_bound=1)
_XLA_LONG_WINDOWS = flags.DEFINE_integer(
    "xla_long_windows", 8, "With --xla_buckets: fit each length bucket longer than every training example on this "
    "many windows of training text (0 = such buckets are not cut).", lower_bound=0)
_XLA_LONG_MARGIN = flags.DEFINE_float(
    "xla_long_margin", 0.25, "With --xla_buckets: raise the capacities of the buckets fitted on windows by this "
    "fraction (in [0, 1]), so long inputs unlike the windows overflow less.", lower_bound=0, upper_bound=1)
_ONNX_MAX_BATCH_TOKENS = flags.DEFINE_integer(
    "onnx_max_batch_tokens", 0, "With --onnx: the token budget stored in the ONNX file: OnnxPredictor runs a batch "
    "as sub-batches of rows sorted by length, each of at most this many row positions (same outputs). 0 = whole "
    "batches. Pick it with `python -m benchmarks.onnx_batch_tokens`.", lower_bound=0)
_SERVING_BASE_PATH = flags.DEFINE_string("serving_base_path", "/models",
                                         "Where --export_dir is mounted in the TF Serving container.")


def main(argv: list[str]) -> None:
    del argv
    from ltp_tf.serving.exporter import export_checkpoint
    from ltp_tf.serving.xla_buckets import SERVER_FLAG

    try:
        result = export_checkpoint(
            _CHECKPOINT.value, _NAME.value, _EXPORT_DIR.value, onnx=_ONNX.value,
            text_signature=_TEXT_SIGNATURE.value, verify=_VERIFY.value,
            verify_max_examples=_VERIFY_MAX_EXAMPLES.value, data_dir=_DATA_DIR.value,
            serving_base_path=_SERVING_BASE_PATH.value, compact_min_length=_COMPACT_MIN_LENGTH.value,
            xla_buckets=_XLA_BUCKETS.value, xla_fit_examples=_XLA_FIT_EXAMPLES.value,
            xla_length_bucket=_XLA_LENGTH_BUCKET.value, xla_long_windows=_XLA_LONG_WINDOWS.value,
            xla_long_margin=_XLA_LONG_MARGIN.value, onnx_max_batch_tokens=_ONNX_MAX_BATCH_TOKENS.value)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"ltp_tf.export: error: {error}")
    print(f"Exported version {result.version} of {_NAME.value!r} to {result.path}")
    if result.onnx_path:
        print(f"ONNX: {result.onnx_path}")
    if result.verification:
        print(f"Verified on {result.verification['examples']} dev examples: "
              + ", ".join(f"{name} max |logit diff| {r['max_abs_logit_diff']:.1e}"
                          for name, r in result.verification["engines"].items()))
    print(f"TF Serving config: {result.models_config}")
    if _XLA_BUCKETS.value:
        print(f"XLA buckets: start tensorflow_model_server with {SERVER_FLAG} (CPU)")


if __name__ == "__main__":
    flags.mark_flags_as_required(["checkpoint", "name"])
    app.run(main)
