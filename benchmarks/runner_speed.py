"""Dense vs pruned speed of a trained checkpoint through the XLA token-dropping runner, on a features folder's
dev split (`ltp_tf.benchmarking.runner_speed`): what the GPU machine (Keras on JAX, no TensorFlow text ops)
measures.

    KERAS_BACKEND=jax python -m benchmarks.runner_speed --checkpoint=<point>/<TASK>/hard/checkpoint \
        --features_dir=features/sst2_64 --batch_sizes=32,256 --output=runner_speed.json

Prints one Markdown row per measure and writes the numbers, the device and the versions to `--output` (JSON).
"""

from __future__ import annotations

import platform
import sys

import numpy as np
from absl import app, flags

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint folder of a token-pruning model.", required=True)
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "Features folder of the checkpoint's task "
                                    "(`ltp_tf.train --stages=tokenize`).", required=True)
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", 256, "Dev examples timed at batch 1.")
_CALIBRATION_EXAMPLES = flags.DEFINE_integer("calibration_examples", 300, "Training examples the pruned runner fits "
                                             "its batch-1 capacities on (0: off).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "256"], "Throughput batch sizes (whole dev split each).")
_OUTPUT = flags.DEFINE_string("output", None, "JSON file to write (default: print only).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"benchmarks.runner_speed: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    import keras

    from ltp_tf.atomic import write_json
    from ltp_tf.benchmarking.runner_speed import measure
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import features as features_lib
    from ltp_tf.data.glue import get_task

    try:
        batch_sizes = tuple(int(b) for b in _BATCH_SIZES.value)
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        sys.exit(f"benchmarks.runner_speed: error: `--batch_sizes` must be integers >= 1. "
                 f"Received: --batch_sizes={','.join(_BATCH_SIZES.value)}")
    for name, value, minimum in (("latency_examples", _LATENCY_EXAMPLES.value, 1),
                                 ("calibration_examples", _CALIBRATION_EXAMPLES.value, 0)):
        if value < minimum:
            sys.exit(f"benchmarks.runner_speed: error: `--{name}` must be an integer >= {minimum}. "
                     f"Received: --{name}={value}")
    try:  # missing or mismatched folders: one line naming the file, before any timing or writing
        checkpoint = load_checkpoint(_CHECKPOINT.value)
        data = features_lib.load_features(_FEATURES_DIR.value, get_task(checkpoint.task), checkpoint.max_seq_length)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"benchmarks.runner_speed: error: {error}")
    split = data.task.dev_splits[0]
    calibration = None
    if _CALIBRATION_EXAMPLES.value:
        calibration = data.train.select(np.arange(min(_CALIBRATION_EXAMPLES.value, len(data.train)))).features.as_dict()
    dev = data.dev[split].features
    speed = measure(checkpoint.model, dev.as_dict(), _LATENCY_EXAMPLES.value, calibration, batch_sizes)
    device = _device()
    print(f"| measure | dense | pruned | speedup |  ({checkpoint.task} {split}, {len(dev.token_ids)} examples of "
          f"{dev.lengths.mean():.1f} tokens, {device})\n|---|---:|---:|---:|")
    print(f"| latency b1 median (ms) | {speed['latency_ms_dense']:.2f} | {speed['latency_ms_pruned']:.2f} | "
          f"{speed['speedup_batch1']:.2f}x |")
    for b in batch_sizes:
        print(f"| throughput b{b} (ex/s) | {speed[f'throughput_batch{b}_dense']:.0f} | "
              f"{speed[f'throughput_batch{b}_pruned']:.0f} | {speed[f'speedup_batch{b}']:.2f}x |")
    if _OUTPUT.value:
        write_json(_OUTPUT.value, {"checkpoint": _CHECKPOINT.value, "task": checkpoint.task, "split": split,
                                   "examples": int(len(dev.token_ids)), "mean_tokens": float(dev.lengths.mean()),
                                   "device": device, "backend": keras.backend.backend(),
                                   "dtype_policy": checkpoint.model.dtype_policy.name,
                                   "python": platform.python_version(), "keras": keras.__version__, **speed})


def _device() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return f"jax {jax.__version__} {jax.devices()[0].device_kind}"
    return f"{keras.backend.backend()} {platform.processor() or platform.machine()}"


if __name__ == "__main__":
    app.run(main)
