"""Serving: fast token-dropping inference (any backend) and SavedModel / ONNX export (TensorFlow).

Only the backend-agnostic runner is imported here; the export modules import TensorFlow and are
imported on use (`ltp_tf.serving.signatures`, `ltp_tf.serving.publish`, `ltp_tf.serving.verify`, ...).
"""

from ltp_tf.serving.buckets import round_up_batch, round_up_length
from ltp_tf.serving.runner import TokenDroppingRunner

__all__ = ["TokenDroppingRunner", "round_up_batch", "round_up_length"]
