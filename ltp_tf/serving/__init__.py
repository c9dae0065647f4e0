"""Serving: fast token-dropping inference (any backend) and SavedModel / ONNX export (TensorFlow).

Only the backend-agnostic runner is imported here. The export modules are imported on use:
`signatures` (the SavedModel's signatures, TensorFlow), `text` (the checkpoint's tokenizer), `exporter`
(a checkpoint to a published version), `publish` (version folders, models.config), `onnx_export`
(ONNX files, onnxruntime session options and predictor), `onnx_graph` (the fused ONNX Runtime graph),
`gate` (the length gate's calibration), `saved_model` (`load_export`: loads an export, TensorFlow Text ops
registered first), `verify` (parity proof, CLI) and `benchmarking` (helpers of `ltp_tf.benchmark`).
"""

from ltp_tf.serving.buckets import round_up_batch, round_up_length
from ltp_tf.serving.runner import TokenDroppingRunner

__all__ = ["TokenDroppingRunner", "round_up_batch", "round_up_length"]
