"""Proof that an export is right: reload it (in this fresh process) and compare with the Keras model.

    python -m ltp_tf.verify --export_path=saved_models/sst2/1 --checkpoint=outputs/.../best \
        [--max_examples=N] [--report=verification.json]

On the task's dev set (all of it unless `--max_examples`), it compares the hard-masked Keras model of the
checkpoint with: the SavedModel's text signature on the raw dev strings (so in-graph tokenization is
checked too), its token-id signature, and the ONNX model under onnxruntime when the export has one.
Each must give the same labels, the same kept-token counts per layer and logits within 1e-5 (max abs).
It also runs `saved_model_cli show --all` and checks both signatures are listed. Exit status 1 on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Callable

import numpy as np


TOLERANCE = 1e-5


def keras_reference(model, features: dict[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Logits and kept tokens of the hard-masked Keras model (no token removal), batch by batch."""
    from ltp_tf.data import trim_to_longest
    from ltp_tf.serving.signatures import token_dropping

    logits, kept = [], []
    with token_dropping(model, False):
        for batch in _batches(features, batch_size):
            batch = trim_to_longest(batch)
            outputs = model.backbone(batch, training=False)
            logits.append(np.asarray(model.head(outputs["pooled_output"], training=False), np.float32))
            kept.append(np.rint(np.asarray(outputs["kept_tokens"])).astype(np.int32))
    return {"logits": np.concatenate(logits), "kept_tokens": np.concatenate(kept)}


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], regression: bool,
            tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Parity of `candidate` with `reference`: logits within `tolerance`, same labels, same kept tokens."""
    difference = float(np.abs(reference["logits"] - candidate["logits"]).max())
    kept_equal = bool(np.array_equal(reference["kept_tokens"], candidate["kept_tokens"]))
    report = {"examples": int(len(reference["logits"])), "max_abs_logit_diff": difference,
              "kept_tokens_equal": kept_equal}
    passed = difference <= tolerance and kept_equal
    if not regression:
        mismatches = int((reference["logits"].argmax(-1) != candidate["logits"].argmax(-1)).sum())
        report["label_mismatches"] = mismatches
        passed = passed and mismatches == 0
    report["passed"] = bool(passed)
    return report


def run_batched(predict: Callable[..., dict], inputs: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """Calls `predict(**batch)` over `inputs` and concatenates `logits` and `kept_tokens`."""
    pieces: dict[str, list] = {"logits": [], "kept_tokens": []}
    for batch in _batches(inputs, batch_size):
        outputs = predict(**batch)
        for key in pieces:
            pieces[key].append(np.asarray(outputs[key]))
    return {key: np.concatenate(value) for key, value in pieces.items()}


def saved_model_cli_show(export_path: str) -> str:
    """The output of `saved_model_cli show --all --dir export_path`."""
    command = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all", "--dir", export_path]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        raise RuntimeError(f"saved_model_cli failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def verify_export(export_path: str, checkpoint_path: str, max_examples: int | None = None,
                  data_dir: str | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Runs every comparison of the module docstring and returns the report (`report["passed"]`)."""
    import tensorflow as tf

    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import get_task, read_split, tokenize
    from ltp_tf.serving.exporter import EXTRA_DIR, ONNX_FILE
    from ltp_tf.serving.onnx_export import OnnxPredictor
    from ltp_tf.serving.saved_model import load_export
    from ltp_tf.serving.signatures import TEXT_SIGNATURE, TOKEN_ID_INPUTS, TOKEN_ID_SIGNATURE, text_input_names
    from ltp_tf.serving.text import checkpoint_preprocessor

    checkpoint = load_checkpoint(checkpoint_path)
    task = get_task(checkpoint.task)
    splits = [read_split(task, split, data_dir) for split in task.dev_splits]
    texts = tuple(sum((list(split.texts[i]) for split in splits), []) for i in range(len(task.text_columns)))
    if max_examples:
        texts = tuple(column[:max_examples] for column in texts)
    features = tokenize(checkpoint_preprocessor(checkpoint), texts).as_dict()
    features["padding_mask"] = features["padding_mask"].astype(np.int32)
    reference = keras_reference(checkpoint.model, features, batch_size)

    loaded = load_export(export_path)
    engines: dict[str, Callable[[], dict]] = {}
    if TEXT_SIGNATURE in loaded.signatures and set(text_input_names(task)) <= set(
            loaded.signatures[TEXT_SIGNATURE].structured_input_signature[1]):
        text_inputs = {name: np.asarray(column, dtype=object) for name, column in zip(text_input_names(task), texts)}
        engines[f"saved_model/{TEXT_SIGNATURE}"] = lambda: run_batched(
            _signature(loaded, TEXT_SIGNATURE, tf.string), text_inputs, batch_size)
    token_inputs = {name: features[name] for name in TOKEN_ID_INPUTS}
    engines[f"saved_model/{TOKEN_ID_SIGNATURE}"] = lambda: run_batched(
        _signature(loaded, TOKEN_ID_SIGNATURE, tf.int32), token_inputs, batch_size)
    onnx_path = os.path.join(export_path, EXTRA_DIR, ONNX_FILE)
    if os.path.isfile(onnx_path):
        predictor = OnnxPredictor(onnx_path)
        engines["onnxruntime"] = lambda: run_batched(lambda **batch: predictor(batch), token_inputs, batch_size)

    results = {name: compare(reference, run(), task.is_regression) for name, run in engines.items()}
    cli_output = saved_model_cli_show(export_path)
    listed = {name: f"signature_def['{name}']" in cli_output for name in loaded.signatures}
    return {
        "task": task.name,
        "dev_splits": list(task.dev_splits),
        "examples": int(len(reference["logits"])),
        "tolerance": TOLERANCE,
        "engines": results,
        "saved_model_cli": {"signatures_listed": listed, "output": cli_output},
        "passed": all(r["passed"] for r in results.values()) and all(listed.values()),
    }


def _signature(loaded, name: str, dtype) -> Callable[..., dict]:
    import tensorflow as tf

    function = loaded.signatures[name]
    return lambda **batch: function(**{key: tf.constant(value, dtype=dtype) for key, value in batch.items()})


def _batches(inputs: dict[str, np.ndarray], batch_size: int):
    count = len(next(iter(inputs.values())))
    for start in range(0, count, batch_size):
        yield {key: value[start:start + batch_size] for key, value in inputs.items()}
