"""Token-pruning layers (Keras 3, `keras.ops` only)."""

from ltp_tf.layers.activations import activation_from_hf, gelu_approximate, gelu_exact
from ltp_tf.layers.encoder_block import TokenPruningEncoderBlock
from ltp_tf.layers.token_scoring import (
    initial_threshold,
    token_importance,
    topk_first_pruning_layer,
    topk_keep_counts,
    topk_keep_rates,
)

__all__ = [
    "TokenPruningEncoderBlock",
    "activation_from_hf",
    "gelu_approximate",
    "gelu_exact",
    "initial_threshold",
    "token_importance",
    "topk_first_pruning_layer",
    "topk_keep_counts",
    "topk_keep_rates",
]
