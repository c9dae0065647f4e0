"""Benchmark dense vs token-pruned inference on a task's real dev set, through every engine, in one run.

    python -m ltp_tf.benchmark --checkpoint=<pruned checkpoint folder>
    python -m ltp_tf.benchmark --task=sst2 --final_token_threshold=0.01      # untrained thresholds

The dense model is the same weights with pruning off. Engines (`ltp_tf.benchmarking.engines`): `keras_xla`
(the token-dropping runner, XLA-compiled per length bucket; `jax.jit` under KERAS_BACKEND=jax), `keras` (the
same runner without XLA), `saved_model` (the exported SavedModel's token-id signature: in-graph token
removal, dynamic shapes), `saved_model_xla` (the same signature exported with `--xla_buckets`: an XLA program
per length bucket), `onnxruntime` (the exported ONNX: fused kernels, `ltp_tf.serving.onnx_graph`) and
`onnxruntime_int8` (the same after dynamic int8 quantization). It measures latency at batch 1 (median,
p90) and throughput at each `--batch_sizes`, with dense and pruned timed in turns of consecutive calls after a
warm-up pass, on the dev texts of `--datasets` and on `--long_lengths` inputs, and writes
`<output_dir>/<tag>.{md,csv,json,png}` (+ `<tag>_length.png`) with the FLOPs reduction and the fastest
dense engine beside each speedup; `--calibrate_gate` adds `<tag>_length_gate.json`. Size it with
`--max_examples` and `--latency_examples`; `--min_timed_calls` passes over an input set's batches again until
every model is timed on that many calls (see benchmarks/README.md for the issue-15 command).

This module defines the flags and parses them once into a `BenchmarkConfig`; the benchmark itself is
`ltp_tf.benchmarking.dense_vs_pruned.run`.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from ltp_tf.benchmarking.dense_vs_pruned import BenchmarkConfig, ModelLimitError, run
from ltp_tf.benchmarking.engines import ENGINES

# Flag defaults are the config's (a dataclass's class attributes are its fields' defaults).
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A pruned checkpoint folder. Default: build one from --model.")
_MODEL = flags.DEFINE_string("model", None, "Without --checkpoint: the pretrained encoder (default: packaged MiniLM).")
_TASK = flags.DEFINE_string("task", BenchmarkConfig.task,
                            "Without --checkpoint: the GLUE task (its dev set is measured).")
_THRESHOLD = flags.DEFINE_float("final_token_threshold", BenchmarkConfig.final_token_threshold,
                                "Without --checkpoint: the last layer's threshold.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", BenchmarkConfig.max_seq_length,
                                       "Without --checkpoint: the tokenizer's length.")
_ENGINES = flags.DEFINE_list("engines", list(BenchmarkConfig.engines), f"Engines to measure, from {list(ENGINES)}.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", [str(v) for v in BenchmarkConfig.batch_sizes],
                                 "Throughput batch sizes.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Dev examples for throughput (default: all).",
                                     lower_bound=1)
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", BenchmarkConfig.latency_examples,
                                         "Dev examples timed one at a time.", lower_bound=1)
_LENGTH_BUCKET = flags.DEFINE_integer("length_bucket", BenchmarkConfig.length_bucket,
                                      "The runner's length bucket (and the saved_model_xla export's).", lower_bound=1)
_CALIBRATION_EXAMPLES = flags.DEFINE_integer(
    "calibration_examples", BenchmarkConfig.calibration_examples, "Training examples from which the runner learns "
    "its batch-1 capacities (`TokenDroppingRunner.fit_capacities`: one program per call instead of one per pruning "
    "layer) and the saved_model_xla export its capacities. 0: off (saved_model_xla: nothing cut).", lower_bound=0)
_THREADS = flags.DEFINE_integer("threads", None, "onnxruntime intra-op threads (default: every CPU).")
_ONNX_MAX_BATCH_TOKENS = flags.DEFINE_integer(
    "onnx_max_batch_tokens", 0, "Token budget of the onnxruntime engines (`OnnxPredictor`: a batch runs as "
    "sub-batches of rows sorted by length, each of at most this many row positions). 0 = whole batches.",
    lower_bound=0)
_DATASETS = flags.DEFINE_list("datasets", [], "GLUE tasks whose dev texts are measured (default: the model's task), "
                              "e.g. sst2,mrpc,rte,qnli; the model's head stays the checkpoint's.")
_LONG_LENGTHS = flags.DEFINE_list("long_lengths", [], "Also measure long inputs of these lengths (e.g. 128,256,512): "
                                  "real dev text of the first dataset, concatenated.")
_CALIBRATE_GATE = flags.DEFINE_boolean(
    "calibrate_gate", False, "Also time the pruned model's two schedules (tokens removed / only masked) per engine "
    "(keras_xla, saved_model, onnxruntime) on every dataset's batch-1 inputs and write the length gate they imply to "
    "<tag>_length_gate.json (ltp_tf.benchmarking.length_gate).")
_LONG_EXAMPLES = flags.DEFINE_integer("long_examples", BenchmarkConfig.long_examples, "Long inputs per length.",
                                      lower_bound=1)
_MIN_TIMED_CALLS = flags.DEFINE_integer(
    "min_timed_calls", BenchmarkConfig.min_timed_calls, "Time every model on at least this many calls per input set "
    "and batch size, passing over its batches again when it has fewer (one batch of 16 long windows at batch 32 "
    "would otherwise be a single call).", lower_bound=1)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", BenchmarkConfig.output_dir, "Where the result files go.")
_TAG = flags.DEFINE_string("tag", None, "File name stem (default: <task>_<backend>_<date>).")
_LENGTH_SCAN = flags.DEFINE_list("length_scan", [str(v) for v in BenchmarkConfig.length_scan],
                                 "Sequence lengths at which the dense model's batch-1 latency (keras_xla) is "
                                 "recorded: how much of it does not shrink with fewer tokens. Empty: skip.")


def config_from_flags() -> BenchmarkConfig:
    """The validated `BenchmarkConfig` of the parsed flags (the only place that reads them)."""
    return BenchmarkConfig(
        checkpoint=_CHECKPOINT.value, model=_MODEL.value, task=_TASK.value, final_token_threshold=_THRESHOLD.value,
        max_seq_length=_MAX_SEQ_LENGTH.value, engines=tuple(_ENGINES.value), batch_sizes=tuple(_BATCH_SIZES.value),
        max_examples=_MAX_EXAMPLES.value, latency_examples=_LATENCY_EXAMPLES.value, length_bucket=_LENGTH_BUCKET.value,
        calibration_examples=_CALIBRATION_EXAMPLES.value, threads=_THREADS.value,
        onnx_max_batch_tokens=_ONNX_MAX_BATCH_TOKENS.value, datasets=tuple(_DATASETS.value),
        long_lengths=tuple(_LONG_LENGTHS.value), calibrate_gate=_CALIBRATE_GATE.value,
        long_examples=_LONG_EXAMPLES.value, min_timed_calls=_MIN_TIMED_CALLS.value, data_dir=_DATA_DIR.value, output_dir=_OUTPUT_DIR.value, tag=_TAG.value,
        length_scan=tuple(_LENGTH_SCAN.value))


def main(argv: list[str]) -> None:
    del argv
    try:
        config = config_from_flags()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    command = " ".join([os.path.basename(sys.executable), "-m", "ltp_tf.benchmark"] + sys.argv[1:])
    try:
        run(config, command)
    except ModelLimitError as error:
        raise app.UsageError(str(error)) from None


if __name__ == "__main__":
    app.run(main)
