"""Token-dropping inference on any Keras backend: pruned tokens physically removed, compiled per shape bucket.

`token_dropping` (`TokenDroppingRunner`: the encoder split at its compaction layers), `shape_buckets` (the
length and batch-size buckets that bound the compiled programs) and `compilation` (`tf.function` / `jax.jit`
of a pure Keras function). Export to TF Serving and ONNX is `ltp_tf.serving`.
"""

from ltp_tf.inference.shape_buckets import length_buckets, round_up_batch, round_up_length
from ltp_tf.inference.token_dropping import TokenDroppingRunner

__all__ = ["TokenDroppingRunner", "length_buckets", "round_up_batch", "round_up_length"]
