"""The engines a benchmark runs dense and pruned models through, each model as a predictor (batch -> outputs).

    keras_xla         the token-dropping runner (`ltp_tf.inference`), XLA-compiled per length bucket
                      (`jax.jit` under KERAS_BACKEND=jax); at batch 1 one program per call once its
                      capacities are fitted on calibration sentences
    keras             the same runner without XLA
    saved_model       the exported SavedModel's token-id signature (in-graph token removal, dynamic shapes)
    saved_model_xla   the same signature of an export with XLA buckets (`--xla_buckets`: an XLA program per
                      length bucket at static capacities fitted on the calibration sentences, the dynamic
                      graph as fallback; `ltp_tf.serving.xla_buckets`)
    onnxruntime       the exported ONNX graph (fused kernels, `ltp_tf.serving.onnx_graph`)
    onnxruntime_int8  the same after onnxruntime's dynamic int8 quantization (QInt8 weights)

The exported engines need SavedModels: `prepare_exports` saves both models as checkpoints and exports them
through the export CLI in a TensorFlow-backend subprocess. Every setting comes in as an argument
(`EngineSettings`); nothing here reads flags.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ltp_tf.benchmarking.timing import Predictor
from ltp_tf.validation import check_int_at_least

if TYPE_CHECKING:
    import keras

    from ltp_tf.checkpoints import Checkpoint
    from ltp_tf.data.glue import GlueTask

ENGINES = ("keras_xla", "keras", "saved_model", "saved_model_xla", "onnxruntime", "onnxruntime_int8")
EXPORTED_ENGINES = ("saved_model", "saved_model_xla", "onnxruntime", "onnxruntime_int8")
MODELS = ("dense", "pruned")


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """How the engines run: the runner's `length_bucket` (keras engines), onnxruntime's intra-op `threads`
    (None: every CPU) and the onnxruntime engines' token budget `onnx_max_batch_tokens` (`OnnxPredictor`; 0: whole
    batches)."""

    length_bucket: int = 8
    threads: int | None = None
    onnx_max_batch_tokens: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.length_bucket, bool) or not isinstance(self.length_bucket, int) or self.length_bucket < 1:
            raise ValueError(f"`length_bucket` must be an integer >= 1. Received: length_bucket={self.length_bucket!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"`threads` must be None or an integer >= 1. Received: threads={self.threads!r}")
        check_int_at_least("onnx_max_batch_tokens", self.onnx_max_batch_tokens, 0)


def prepare_exports(engines: Sequence[str], checkpoint: Checkpoint, models: dict[str, keras.Model], workdir: str,
                    max_seq_length: int, settings: EngineSettings = EngineSettings(), fit_examples: int = 0,
                    data_dir: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """`(checkpoints, exports)`: each model (`dense`, `pruned`) saved like `checkpoint` (tokenizer, task) with
    `max_seq_length` under `workdir`, and its exports by name: `dense`, `pruned` (ONNX too if an onnxruntime
    engine is asked for) and, for `saved_model_xla`, `dense_xla`, `pruned_xla` (XLA buckets of
    `settings.length_bucket`, capacities fitted on the first `fit_examples` training examples in `data_dir`).
    Both empty when no engine needs an export."""
    if not set(EXPORTED_ENGINES) & set(engines):
        return {}, {}
    checkpoints = {
        "dense": _save_like(checkpoint, models["dense"], os.path.join(workdir, "dense"), max_seq_length),
        "pruned": _save_like(checkpoint, models["pruned"], os.path.join(workdir, "pruned_export"), max_seq_length)}
    exports = {}
    if {"saved_model", "onnxruntime", "onnxruntime_int8"} & set(engines):
        onnx = bool({"onnxruntime", "onnxruntime_int8"} & set(engines))
        exports.update({name: export(path, name, workdir, onnx=onnx) for name, path in checkpoints.items()})
    if "saved_model_xla" in engines:
        exports.update({f"{name}_xla": export(path, f"{name}_xla", workdir, onnx=False,
                                              xla_length_bucket=settings.length_bucket, xla_fit_examples=fit_examples,
                                              data_dir=data_dir)
                        for name, path in checkpoints.items()})
    return checkpoints, exports


def predictors(engine: str, models: dict[str, keras.Model], exports: dict[str, str], settings: EngineSettings,
               calibration: dict[str, np.ndarray] | None, workdir: str) -> dict[str, Predictor]:
    """`{"dense": predict, "pruned": predict}` for an engine; each maps a batch to `{"logits", ...}`.

    `models`: the Keras models (keras engines); `exports`: their export folders (the others);
    `calibration`: features the pruned runner fits its batch-1 capacities on (None: not fitted).
    """
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {list(ENGINES)}. Received: engine={engine!r}")
    from ltp_tf.inference import TokenDroppingRunner

    if engine in ("keras_xla", "keras"):
        runners = {name: TokenDroppingRunner(model, length_bucket=settings.length_bucket,
                                             jit_compile=engine == "keras_xla")
                   for name, model in models.items()}
        if calibration is not None:
            runners["pruned"].fit_capacities(calibration, batch_size=1)
        return runners
    if engine in ("saved_model", "saved_model_xla"):
        suffix = "_xla" if engine == "saved_model_xla" else ""
        return {name: signature_predictor(exports[name + suffix]) for name in MODELS}
    from ltp_tf.serving.exporter import EXTRA_DIR, ONNX_FILE
    from ltp_tf.serving.onnx_export import OnnxPredictor

    paths = {name: os.path.join(exports[name], EXTRA_DIR, ONNX_FILE) for name in MODELS}
    if engine == "onnxruntime_int8":
        paths = {name: _quantized(path, os.path.join(workdir, f"{name}_int8.onnx")) for name, path in paths.items()}
    return {name: OnnxPredictor(path, settings.threads, settings.onnx_max_batch_tokens) for name, path in paths.items()}


def masked_predictor(engine: str, model: keras.Model, task: GlueTask, settings: EngineSettings, workdir: str,
                     pruned_checkpoint: str) -> Predictor | None:
    """The pruned model's mask-only schedule (pruned tokens masked, not removed; same outputs) on `engine`, or
    None for an engine without one (keras, onnxruntime_int8). The saved_model one is exported from
    `pruned_checkpoint` with a length gate above every input."""
    if engine == "keras_xla":
        from ltp_tf.inference import TokenDroppingRunner

        return TokenDroppingRunner(model, length_bucket=settings.length_bucket, compact_layers=[])
    if engine == "onnxruntime":
        import onnx

        from ltp_tf.serving.onnx_export import OnnxPredictor, with_input_limits
        from ltp_tf.serving.onnx_graph import build_onnx_graph
        from ltp_tf.serving.signatures import input_limits

        path = os.path.join(workdir, "pruned_masked.onnx")
        graph = build_onnx_graph(model, task, compact_layers=[])
        onnx.save(with_input_limits(graph, input_limits(model, model.backbone.max_sequence_length)), path)
        return OnnxPredictor(path, settings.threads, settings.onnx_max_batch_tokens)
    if engine == "saved_model":
        return signature_predictor(export(pruned_checkpoint, "pruned_masked", workdir, onnx=False,
                                          compact_min_length=10**6))
    return None


def signature_predictor(path: str) -> Predictor:
    """The token-id signature of the SavedModel at `path` as a predictor."""
    import tensorflow as tf

    from ltp_tf.serving.saved_model import load_export

    function = load_export(path).signatures["token_ids"]
    return lambda batch: {k: v.numpy() for k, v in function(
        **{name: tf.constant(value, tf.int32) for name, value in batch.items()}).items()}


def export(checkpoint_path: str, name: str, workdir: str, onnx: bool, compact_min_length: int = 0,
           xla_length_bucket: int | None = None, xla_fit_examples: int = 0, data_dir: str | None = None) -> str:
    """Exports through the export CLI in a TensorFlow-backend subprocess; returns the version folder.

    `xla_length_bucket`: export with XLA buckets of that rounding (None: without), capacities fitted on the
    first `xla_fit_examples` training examples in `data_dir`.
    """
    export_dir = os.path.join(workdir, "saved_models")
    command = [sys.executable, "-m", "ltp_tf.export", f"--checkpoint={checkpoint_path}", f"--name={name}",
               f"--export_dir={export_dir}", f"--onnx={onnx}", "--text_signature=false",
               f"--compact_min_length={compact_min_length}"]
    if xla_length_bucket is not None:
        command += ["--xla_buckets", f"--xla_length_bucket={xla_length_bucket}",
                    f"--xla_fit_examples={xla_fit_examples}"]
    if data_dir:
        command.append(f"--data_dir={data_dir}")
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        raise RuntimeError(f"Export failed (exit {result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return os.path.join(export_dir, name, "1")


def _save_like(checkpoint: Checkpoint, model: keras.Model, path: str, max_seq_length: int | None = None) -> str:
    from ltp_tf.checkpoints import save_checkpoint

    return save_checkpoint(path, model, task=checkpoint.task,
                           max_seq_length=max_seq_length or checkpoint.max_seq_length,
                           vocabulary_file=checkpoint.tokenizer_files, metadata=dict(checkpoint.metadata))


def _quantized(path: str, output: str) -> str:
    """Dynamic int8 quantization of the ONNX model at `path` (weights QInt8, activations at run time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ltp_tf.serving.onnx_graph import float_only_nodes

    quantize_dynamic(path, output, weight_type=QuantType.QInt8,
                     nodes_to_exclude=float_only_nodes(onnx.load(path, load_external_data=False)),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # for the com.microsoft ops
    return output

