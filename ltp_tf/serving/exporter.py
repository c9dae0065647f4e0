"""Exports a checkpoint folder as a new TF Serving version: SavedModel, optional ONNX, optional verification.

    <export_dir>/<name>/<version>/
        saved_model.pb, variables/        the SavedModel (signatures: ltp_tf.serving.signatures)
        assets.extra/ltp_tf_export.json   task, labels, max_seq_length, tokenizer settings, signatures, the
                                          length gate (`compact_min_length`), `onnx_max_batch_tokens` and,
                                          with `xla_buckets=True`, the buckets and capacities (`xla_buckets`:
                                          see `ltp_tf.serving.xla_buckets`; null without)
        assets.extra/model.onnx           with `onnx=True`: the token-id signature as ONNX (fused ONNX Runtime
                                          kernels, `ltp_tf.serving.onnx_graph`; tf2onnx for other models;
                                          metadata: input limits, the `onnx_max_batch_tokens` budget)
        assets.extra/verification.json    with `verify=True`: the parity report (ltp_tf.verify)
    <export_dir>/models.config            TF Serving config listing every model folder

TF Serving ignores `assets.extra/` (it is the SavedModel's folder for files beside the graph). An export with
XLA buckets needs `tensorflow_model_server --xla_cpu_compilation_enabled=true` on CPU.
Everything is written into a staging folder and published by renaming it (`ltp_tf.serving.publish`);
verification runs on the staging folder in a fresh process, so a version that fails it is never published.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Mapping

import numpy as np

import ltp_tf
from ltp_tf.atomic import write_json
from ltp_tf.checkpoints import METADATA_FILE, load_checkpoint
from ltp_tf.data.glue import get_task
from ltp_tf.data.tokenization import tokenizer_settings
from ltp_tf.serving import publish
from ltp_tf.serving.onnx_export import write_onnx
from ltp_tf.serving.signatures import (TEXT_SIGNATURE, TOKEN_ID_INPUTS, TOKEN_ID_SIGNATURE, build_export_archive,
                                       input_limits, output_names, text_input_names, token_dropping)
from ltp_tf.serving.text import checkpoint_preprocessor, training_features
from ltp_tf.serving.xla_buckets import fit_xla_buckets
from ltp_tf.validation import check_int_at_least, check_number

EXTRA_DIR = "assets.extra"
EXPORT_INFO_FILE = "ltp_tf_export.json"
ONNX_FILE = "model.onnx"
VERIFICATION_FILE = "verification.json"


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """Where an export went: the version folder, its number, the ONNX file and the regenerated config."""

    path: str
    version: int
    onnx_path: str | None
    models_config: str
    verification: dict[str, Any] | None


def export_checkpoint(checkpoint_path: str, name: str, export_dir: str = "saved_models", *, onnx: bool = False,
                      text_signature: bool = True, verify: bool = False, verify_max_examples: int | None = None,
                      data_dir: str | None = None, serving_base_path: str = "/models",
                      compact_min_length: int = 0, xla_buckets: bool = False, xla_fit_examples: int = 1000,
                      xla_sample: Mapping[str, np.ndarray] | None = None, xla_length_bucket: int = 8,
                      xla_long_windows: int = 8, xla_long_margin: float = 0.25,
                      onnx_max_batch_tokens: int = 0) -> ExportResult:
    """Exports the checkpoint at `checkpoint_path` as the next version of model `name`.

    Args:
        checkpoint_path: a checkpoint folder (`ltp_tf.checkpoints`) holding a `TokenPruningClassifier`.
        name: the TF Serving model name (folder name under `export_dir`).
        export_dir: the folder of all models (mounted as `serving_base_path` in the TF Serving container).
        onnx: also convert the token-id signature to ONNX.
        text_signature: include the string signature (needs TensorFlow Text ops in the server). Without
            it, `serving_default` is the token-id signature.
        verify: compare the export with the Keras model on the task's dev set in a fresh process before
            publishing; a failed comparison raises and publishes nothing.
        verify_max_examples: verify on the first N dev examples only (default: the whole dev set).
        data_dir: GLUE folder for verification (default: `ltp_tf.data.default_glue_dir()`).
        serving_base_path: the model base path written into `models.config`.
        compact_min_length: the length gate of the SavedModel and the ONNX graph: inputs (ONNX: the
            sequence entering a compaction layer) shorter than this are only masked, not compacted (same
            outputs; pick it with `python -m ltp_tf.benchmark`, see benchmarks/README.md). 0: always compact.
        xla_buckets: run the encoder of both signatures as XLA programs per length bucket, at static per-layer
            capacities fitted on sample inputs, falling back to the dynamic graph when an input keeps more
            (`ltp_tf.serving.xla_buckets`; same outputs). TF Serving needs `--xla_cpu_compilation_enabled=true`.
        xla_fit_examples: with `xla_buckets`, fit the capacities on the first N training examples of the
            checkpoint's task (read from `data_dir`); 0: fit none (nothing is cut, every bucket still runs XLA).
        xla_sample: with `xla_buckets`, fit on these features (`token_ids`, `segment_ids`, `padding_mask`)
            instead of training examples.
        xla_length_bucket: with `xla_buckets`, the rounding of lengths to buckets (`ltp_tf.inference.shape_buckets`).
        xla_long_windows: with `xla_buckets`, fit each bucket longer than every sample row on this many windows
            of the sample's text (0: such buckets are not cut).
        xla_long_margin: with `xla_buckets`, raise those buckets' capacities by this fraction, in [0, 1], so
            long text unlike the windows overflows less (`ltp_tf.serving.xla_buckets`).
        onnx_max_batch_tokens: with `onnx`, the token budget `OnnxPredictor` runs a batch under by default
            (sub-batches of at most this many row positions; `ltp_tf.serving.onnx_export`; same outputs). 0: none.
    """
    check_int_at_least("compact_min_length", compact_min_length, 0)
    check_int_at_least("xla_fit_examples", xla_fit_examples, 0)
    check_int_at_least("xla_long_windows", xla_long_windows, 0)
    check_int_at_least("onnx_max_batch_tokens", onnx_max_batch_tokens, 0)
    check_number("xla_long_margin", xla_long_margin, "a number in [0, 1]", lambda value: 0 <= value <= 1)
    publish.check_model_name(name)
    checkpoint = load_checkpoint(checkpoint_path)
    task = get_task(checkpoint.task)
    model = checkpoint.model
    preprocessor = checkpoint_preprocessor(checkpoint) if text_signature else None
    buckets = (_xla_buckets(checkpoint, task, xla_fit_examples, xla_sample, data_dir, xla_length_bucket,
                            xla_long_windows, xla_long_margin)
               if xla_buckets else None)
    model_dir = os.path.join(os.path.abspath(export_dir), name)
    staging = publish.new_staging_folder(model_dir)
    verification = None
    try:
        extra = os.path.join(staging, EXTRA_DIR)
        with token_dropping(model, True):
            build_export_archive(model, task, checkpoint.max_seq_length, preprocessor, compact_min_length,
                                 buckets).write_out(staging, verbose=False)
            os.makedirs(extra, exist_ok=True)
            onnx_graph = None
            if onnx:
                token_id_archive = lambda: build_export_archive(model, task, checkpoint.max_seq_length)  # noqa: E731
                onnx_graph = write_onnx(model, task, token_id_archive, os.path.join(extra, ONNX_FILE),
                                        input_limits(model, checkpoint.max_seq_length), compact_min_length,
                                        onnx_max_batch_tokens)
        info = export_info(checkpoint, task, text_signature, onnx)
        info.update(onnx_graph=onnx_graph, compact_min_length=compact_min_length,
                    onnx_max_batch_tokens=onnx_max_batch_tokens if onnx else None,
                    xla_buckets=buckets.to_json() if buckets else None)
        write_json(os.path.join(extra, EXPORT_INFO_FILE), info, sort_keys=True)
        if verify:
            verification = run_verification(staging, checkpoint.path, os.path.join(extra, VERIFICATION_FILE),
                                            verify_max_examples, data_dir)
        path = publish.publish(staging, model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    config = publish.write_models_config(os.path.abspath(export_dir), serving_base_path)
    return ExportResult(path=path, version=int(os.path.basename(path)),
                        onnx_path=os.path.join(path, EXTRA_DIR, ONNX_FILE) if onnx else None,
                        models_config=config, verification=verification)


def _xla_buckets(checkpoint, task, fit_examples: int, sample: Mapping[str, np.ndarray] | None,
                 data_dir: str | None, length_bucket: int, long_windows: int, long_margin: float):
    """The XLA buckets of `checkpoint`'s model, fitted on `sample` or its first training examples."""
    pruning = any(block.prunes for block in checkpoint.model.backbone.transformer_layers)
    if sample is None and fit_examples and pruning:
        try:
            sample = training_features(checkpoint, task, fit_examples, data_dir)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{error}. The XLA buckets' capacities are fitted on training examples: "
                                    "pass --data_dir, or --xla_fit_examples=0 to fit none.") from error
    return fit_xla_buckets(checkpoint.model, checkpoint.max_seq_length, sample if pruning else None, length_bucket,
                           long_windows, long_margin)


def export_info(checkpoint, task, text_signature: bool, onnx: bool) -> dict[str, Any]:
    """What a client needs to know about an export (written to `assets.extra/ltp_tf_export.json`)."""
    backbone = checkpoint.model.backbone
    signatures = {TOKEN_ID_SIGNATURE: {"inputs": list(TOKEN_ID_INPUTS), "outputs": list(output_names(task))}}
    if text_signature:
        signatures[TEXT_SIGNATURE] = {"inputs": list(text_input_names(task)), "outputs": list(output_names(task))}
    return {
        "task": task.name,
        "labels": list(task.labels),
        "num_classes": task.num_classes,
        "max_seq_length": checkpoint.max_seq_length,
        "truncation": "texts are cut to max_seq_length tokens including [CLS]/[SEP] (pairs: round-robin)",
        "family": checkpoint.family,
        "tokenizer": tokenizer_settings(checkpoint.family, checkpoint.metadata,
                                        os.path.join(checkpoint.path, METADATA_FILE)),
        "num_layers": backbone.num_layers,
        "pruning_config": backbone.pruning_config.to_dict(),
        "signatures": signatures,
        "onnx": ONNX_FILE if onnx else None,
        "checkpoint": checkpoint.path,
        "ltp_tf_version": ltp_tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def run_verification(export_path: str, checkpoint_path: str, report_path: str, max_examples: int | None,
                     data_dir: str | None) -> dict[str, Any]:
    """Runs `python -m ltp_tf.verify` in a fresh process; raises if it fails, returns its report."""
    command = [sys.executable, "-m", "ltp_tf.verify", f"--export_path={export_path}",
               f"--checkpoint={checkpoint_path}", f"--report={report_path}"]
    if max_examples:
        command.append(f"--max_examples={max_examples}")
    if data_dir:
        command.append(f"--data_dir={data_dir}")
    result = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0 or not os.path.isfile(report_path):
        raise RuntimeError(f"Verification of the export failed (exit {result.returncode}); nothing was published. "
                           f"Command: {' '.join(command)}")
    with open(report_path, encoding="utf-8") as f:
        return json.load(f)

