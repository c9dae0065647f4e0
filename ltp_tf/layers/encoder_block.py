"""`TokenPruningEncoderBlock`: a post-LayerNorm BERT encoder block that prunes tokens by attention received."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ltp_tf.layers import token_scoring
from ltp_tf.layers.activations import get_activation
from ltp_tf.token_pruning_config import TokenPruningConfig
from ltp_tf.validation import check_int_at_least


@keras.saving.register_keras_serializable(package="ltp_tf")
class TokenPruningEncoderBlock(keras.layers.Layer):
    """BERT encoder block (self-attention, feed-forward, post-LayerNorm) with LTP token pruning.

    The block scores every live token by the attention it receives in this layer
    (`token_scoring.token_importance`), decides which tokens survive, and passes on a mask of live
    tokens (and, with `drop_tokens=True`, only the live tokens themselves). A token pruned here still
    goes through this layer's attention (it was needed to score it) but not through its feed-forward
    network, and no later layer sees it — LTP's FLOPs accounting (`ltp_tf.flops`).

    Pruning modes (from `pruning_config.prune_mode`):
    - `"none"`: dense.
    - `"topk"`: the `topk_keep_rates` schedule, or the config's per-layer `token_keep_rates`; a sentence
      keeps `round(length * rate)` tokens (at least 1), relative to its unpadded length
      (`token_scoring.topk_keep_counts`).
    - `"absolute_threshold"`: tokens whose score is below the layer's threshold are pruned. The threshold
      is `final_token_threshold * i / L + threshold_lr_scale * threshold_delta`, `threshold_delta` a
      scalar weight initialised to 0 (LTP's base plus trainable delta). It trains only in soft mode.
      In soft mode and training, nothing is removed: the block output is multiplied by
      `sigmoid((score - threshold) / temperature)` and `mask_loss_weight * mean(mask)` is added as a loss.
      With `soft_mask="straight_through"`, soft training prunes as hard mode does (the mask's forward
      values are 0/1 and later layers drop the pruned tokens) while gradients flow through the sigmoid.
      Called with `training=False`, a soft block prunes hard (LTP always evaluates hard).
    Layer 0 never prunes. `[CLS]` (position 0) is never pruned; padding is never kept.

    Args:
        intermediate_dim: width of the feed-forward layer.
        num_heads: attention heads; must divide the hidden size.
        layer_index: 0-based index of this block in its encoder (sets its schedule and threshold).
        num_layers: number of blocks in the encoder.
        pruning_config: a `TokenPruningConfig` (or its dict); default: no pruning.
        drop_tokens: physically remove pruned tokens (the live ones move to the front of each row, rows are
            padded only to the longest kept row; the feed-forward network runs on the live tokens of all rows
            packed into one sequence), so later layers run on fewer tokens. Outputs equal hard masking on the
            live tokens (the padded slots hold zeros). In soft
            training nothing is pruned, so only trailing padding is removed and the soft mask follows the
            tokens (outputs equal soft masking on the live tokens).
        threshold_lr_scale: the threshold moves `threshold_lr_scale` times as fast as the other weights
            under Adam-type optimizers (a separate learning rate for thresholds, as LTP's own optimizer).
        activation: feed-forward activation name; `"gelu_exact"` for BERT checkpoints (see
            `ltp_tf.layers.activations`).
        dropout: dropout rate of attention probabilities and of both residual branches.
        layer_norm_epsilon: LayerNorm epsilon (1e-12 for BERT).
        kernel_initializer, bias_initializer: initialisers of every dense kernel and bias.

    Call arguments:
        hidden_states: `(batch, seq, hidden)`.
        token_mask: `(batch, seq)` bool, True for live tokens; default all live.
        sentence_lengths: `(batch,)` unpadded lengths of the original sentences (top-k counts are relative
            to them); default: the number of live tokens.
        training: Python bool.

    Returns:
        A dict: `hidden_states` `(batch, seq', hidden)`, `token_mask` `(batch, seq')` live tokens after this
        layer, `kept_positions` `(batch, seq')` int32 input positions of the outputs (the identity unless
        tokens were dropped), `token_scores` `(batch, seq)` importance of the input tokens, and
        `keep_mask` `(batch, seq)`: 1/0 per input token in hard mode, the soft mask in soft training.
        `token_scores` and `keep_mask` are float32 under every dtype policy, also `mixed_float16` and
        `mixed_bfloat16` (`hidden_states` has the compute dtype): thresholds go down to 1e-5, below
        float16's smallest normal number (6.1e-5), and the soft mask divides score differences of that
        size by a temperature of about 1e-3, so half precision would change which tokens are kept.
    """

    def __init__(
        self,
        intermediate_dim: int,
        num_heads: int,
        layer_index: int = 0,
        num_layers: int = 1,
        pruning_config: TokenPruningConfig | dict | None = None,
        drop_tokens: bool = False,
        threshold_lr_scale: float = 1.0,
        activation: str = "gelu_exact",
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-12,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_int_at_least("intermediate_dim", intermediate_dim, 1)
        check_int_at_least("num_heads", num_heads, 1)
        check_int_at_least("num_layers", num_layers, 1)
        check_int_at_least("layer_index", layer_index, 0)
        if layer_index >= num_layers:
            raise ValueError(f"`layer_index` must be < num_layers ({num_layers}). Received: layer_index={layer_index}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        if not threshold_lr_scale > 0.0:
            raise ValueError(f"`threshold_lr_scale` must be > 0. Received: threshold_lr_scale={threshold_lr_scale}")
        if isinstance(pruning_config, dict):
            pruning_config = TokenPruningConfig.from_dict(pruning_config)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.layer_index = layer_index
        self.num_layers = num_layers
        self.pruning_config = pruning_config or TokenPruningConfig()
        self.drop_tokens = bool(drop_tokens)
        self.threshold_lr_scale = float(threshold_lr_scale)
        self.activation = activation
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        get_activation(activation)  # validates the name
        rates = self.pruning_config.token_keep_rates
        if rates is not None and len(rates) != num_layers:
            raise ValueError(f"`token_keep_rates` must hold one rate per layer ({num_layers}). "
                             f"Received: token_keep_rates={rates}")
        self.supports_masking = False

    # ------------------------------------------------------------------ build
    def build(self, hidden_states_shape, token_mask_shape=None, sentence_lengths_shape=None):
        self._check_hidden_shape(hidden_states_shape)
        hidden_dim = hidden_states_shape[-1]
        dense_args = dict(kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
                          dtype=self.dtype_policy)
        self.self_attention_layer = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads, key_dim=hidden_dim // self.num_heads, dropout=self.dropout, flash_attention=False,
            name="self_attention_layer", **dense_args)
        self.self_attention_layer.build(hidden_states_shape, hidden_states_shape)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="self_attention_layer_norm", dtype=self.dtype_policy)
        self.self_attention_layer_norm.build(hidden_states_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=get_activation(self.activation),
            name="feedforward_intermediate_dense", **dense_args)
        self.feedforward_intermediate_dense.build(hidden_states_shape)
        self.feedforward_output_dense = keras.layers.Dense(hidden_dim, name="feedforward_output_dense", **dense_args)
        self.feedforward_output_dense.build((*hidden_states_shape[:-1], self.intermediate_dim))
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="feedforward_layer_norm", dtype=self.dtype_policy)
        self.feedforward_layer_norm.build(hidden_states_shape)
        self._build_own_state()

    def build_sharing(self, owner: "TokenPruningEncoderBlock") -> None:
        """Builds this block on `owner`'s attention, feed-forward and LayerNorm layers (ALBERT's shared layer).

        The weights then exist once, under `owner`'s path; every block that shares them applies them in
        its own position, and gradients from all of them add up. This block keeps its own pruning state
        (`layer_index`, `threshold_delta`, `frozen_threshold`) and dropout layers. `owner` must be built
        and configured alike (`intermediate_dim`, `num_heads`, `activation`, `dropout`, `layer_norm_epsilon`).
        """
        if not isinstance(owner, TokenPruningEncoderBlock) or owner is self or not owner.built:
            raise ValueError("`owner` must be another, built TokenPruningEncoderBlock. "
                             f"Received: owner={getattr(owner, 'name', owner)!r}")
        for name in _SHARED_SETTINGS:
            if getattr(owner, name) != getattr(self, name):
                raise ValueError(f"A block sharing weights must have the `{name}` of their owner "
                                 f"({getattr(owner, name)!r}). Received: {name}={getattr(self, name)!r}")
        for name in _WEIGHT_LAYERS:
            setattr(self, name, getattr(owner, name))
        self._build_own_state()

    def _build_own_state(self) -> None:
        """The weightless dropout layers and the pruning threshold variables, which no other block shares."""
        self.self_attention_dropout = keras.layers.Dropout(self.dropout, name="self_attention_dropout",
                                                           dtype=self.dtype_policy)
        self.feedforward_dropout = keras.layers.Dropout(self.dropout, name="feedforward_dropout",
                                                        dtype=self.dtype_policy)
        # Both present in every mode so checkpoints load across modes. `threshold_delta` trains in soft
        # threshold search; `frozen_threshold` is the threshold hard masking uses (set on the switch to hard).
        self.threshold_delta = self.add_weight(
            name="threshold_delta", shape=(), initializer="zeros", dtype="float32",
            trainable=self.pruning_config.learned and self.prunes)
        self.frozen_threshold = self.add_weight(
            name="frozen_threshold", shape=(), initializer=keras.initializers.Constant(self.base_threshold),
            dtype="float32", trainable=False)
        self.built = True

    def _check_hidden_shape(self, hidden_states_shape) -> None:
        if len(hidden_states_shape) != 3:
            raise ValueError("`hidden_states` must have rank 3 (batch, sequence, hidden). "
                             f"Received: shape={tuple(hidden_states_shape)}")
        hidden_dim = hidden_states_shape[-1]
        if hidden_dim is None or hidden_dim % self.num_heads:
            raise ValueError(f"The hidden size must be divisible by `num_heads` ({self.num_heads}). "
                             f"Received: hidden size={hidden_dim}")

    # ------------------------------------------------------------- properties
    @property
    def prunes(self) -> bool:
        """Whether this block can prune at all (layer 0 and the top-k warm-up layers never do)."""
        mode = self.pruning_config.prune_mode
        if mode == "topk":
            if self.pruning_config.token_keep_rates is not None:
                return self.layer_index > 0 and self.topk_keep_rate < 1.0
            return self.layer_index >= token_scoring.topk_first_pruning_layer(self.num_layers)
        return mode == "absolute_threshold" and self.layer_index > 0

    @property
    def topk_keep_rate(self) -> float:
        """This layer's `topk` keep rate: its entry of `token_keep_rates`, else LTP's schedule's."""
        rates = self.pruning_config.token_keep_rates
        if rates is None:
            return token_scoring.topk_keep_rates(self.num_layers, self.pruning_config.token_keep_rate)[self.layer_index]
        return rates[self.layer_index]

    @property
    def base_threshold(self) -> float:
        return token_scoring.initial_threshold(self.layer_index, self.num_layers,
                                               self.pruning_config.final_token_threshold)

    @property
    def threshold(self):
        """The threshold in use (float32 scalar): learned `base + scale * delta` in soft mode, else frozen."""
        if self.pruning_config.learned:
            return self.base_threshold + self.threshold_lr_scale * self.threshold_delta
        return self.frozen_threshold

    def set_masking_mode(self, masking_mode: str, update_trainable: bool = True) -> None:
        """Switches soft/hard masking, carrying the threshold over. Recompile the model afterwards.

        Soft to hard freezes the learned threshold into `frozen_threshold`; hard to soft starts the
        search from the frozen value. With `update_trainable`, `threshold_delta` becomes trainable only
        in soft mode (inside a running `fit` leave it False: the optimizer's variable list is fixed
        there; the hard threshold no longer reads `threshold_delta` anyway).
        """
        new_config = self.pruning_config.replace(masking_mode=masking_mode)
        if self.built and new_config.learned != self.pruning_config.learned:
            learned = self.base_threshold + self.threshold_lr_scale * self.threshold_delta
            if new_config.learned:
                self.threshold_delta.assign((self.frozen_threshold - self.base_threshold) / self.threshold_lr_scale)
            else:
                self.frozen_threshold.assign(learned)
        self.pruning_config = new_config
        if self.built and update_trainable:
            self.threshold_delta.trainable = new_config.learned and self.prunes

    # ------------------------------------------------------------------- call
    def call(self, hidden_states, token_mask=None, sentence_lengths=None, training=None):
        _check_call_shapes(hidden_states, token_mask, sentence_lengths)
        batch_size, seq_len = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
        if token_mask is None:
            token_mask = ops.ones((batch_size, seq_len), dtype="bool")
        token_mask = ops.cast(token_mask, "bool")
        if sentence_lengths is None:
            sentence_lengths = ops.sum(ops.cast(token_mask, "int32"), axis=1)

        attention_output, attention_probs = self.attend(hidden_states, token_mask, training)
        scores = self.score_tokens(attention_probs, token_mask)  # (batch, seq)

        soft = bool(training) and self.pruning_config.learned and self.prunes
        if soft and self.pruning_config.soft_mask == "straight_through":
            keep_mask = token_scoring.straight_through_keep_mask(scores, token_mask, self.threshold,
                                                                 self.pruning_config.temperature)
            new_token_mask = ops.cast(keep_mask, "bool")  # the forward values are exactly 0 or 1
        elif soft:
            keep_mask = token_scoring.soft_keep_mask(scores, token_mask, self.threshold,
                                                     self.pruning_config.temperature)
            new_token_mask = token_mask
        else:
            new_token_mask = self.hard_keep_mask(scores, token_mask, sentence_lengths)
            keep_mask = ops.cast(new_token_mask, "float32")

        if self.drop_tokens and self.prunes:
            counts = ops.sum(ops.cast(new_token_mask, "int32"), axis=1)  # (batch,)
            kept_positions = token_scoring.compact_order(new_token_mask)[:, :ops.max(counts)]  # (batch, seq')
            # Kept tokens first in each row, so the live slots are each row's first `counts`.
            new_token_mask = ops.arange(ops.shape(kept_positions)[1], dtype="int32")[None, :] < counts[:, None]
            output_mask = ops.take_along_axis(keep_mask, kept_positions, axis=1)
            outputs = self._packed_feed_forward(hidden_states, attention_output, kept_positions, new_token_mask,
                                                training)  # (batch, seq', hidden)
        else:
            kept_positions = ops.broadcast_to(ops.arange(seq_len, dtype="int32")[None, :], (batch_size, seq_len))
            output_mask = keep_mask  # (batch, seq)
            outputs = self.feed_forward(hidden_states, attention_output, training)  # (batch, seq, hidden)
        if soft:
            outputs = outputs * ops.cast(output_mask, outputs.dtype)[:, :, None]
            self.add_loss(self.pruning_config.mask_loss_weight * token_scoring.masked_mean(keep_mask, token_mask))
        return {
            "hidden_states": outputs,
            "token_mask": new_token_mask,
            "kept_positions": kept_positions,
            "token_scores": scores,
            "keep_mask": keep_mask,
        }

    # ------------------------------------------------------------------ steps
    # `call` is attend -> score_tokens -> keep mask -> (gather the kept tokens) -> feed_forward. The steps are
    # public so that a caller can run a block in pieces (`ltp_tf.inference.token_dropping` removes the pruned tokens
    # between a block's attention and its feed-forward network); they hold all of the block's math.

    def attend(self, hidden_states, token_mask, training=None):
        """Self-attention with the live tokens as keys, and its dropout.

        Args:
            hidden_states: `(batch, seq, hidden)`.
            token_mask: `(batch, seq)` bool, True for live tokens (every query sees the same live keys).
            training: Python bool (attention and output dropout).

        Returns:
            `(attention_output, attention_probs)`: `(batch, seq, hidden)` and `(batch, heads, seq, seq)`.
        """
        # Keys are the live tokens; every query row sees the same keys. (batch, query, key)
        attention_mask = ops.broadcast_to(token_mask[:, None, :], (ops.shape(token_mask)[0],
                                                                   ops.shape(token_mask)[1],
                                                                   ops.shape(token_mask)[1]))
        attention_output, attention_probs = self.self_attention_layer(
            hidden_states, hidden_states, attention_mask=attention_mask,
            return_attention_scores=True, training=training)  # (batch, seq, hidden), (batch, heads, seq, seq)
        return self.self_attention_dropout(attention_output, training=training), attention_probs

    def score_tokens(self, attention_probs, token_mask):
        """The importance of each token: the attention it receives, by this block's `scoring_mode`.

        Args:
            attention_probs: `(batch, heads, seq, seq)` from `attend`.
            token_mask: `(batch, seq)` bool, the live tokens.

        Returns:
            `(batch, seq)` float32 scores (`token_scoring.token_importance`).
        """
        return token_scoring.token_importance(attention_probs, token_mask, self.pruning_config.scoring_mode,
                                              self.pruning_config.score_reference_length)

    def hard_keep_mask(self, scores, token_mask, sentence_lengths):
        """The live tokens this block passes on when it prunes hard (hard masking, and every inference call).

        `topk` keeps each sentence's best `round(length * rate)` tokens, `absolute_threshold` those scoring at
        least the threshold; a block that does not prune (`prunes` False) keeps every live token. `[CLS]` is
        always kept, padding never.

        Args:
            scores: `(batch, seq)` float32 from `score_tokens`.
            token_mask: `(batch, seq)` bool, the live tokens.
            sentence_lengths: `(batch,)` int32 unpadded lengths of the original sentences (top-k counts).

        Returns:
            `(batch, seq)` bool.
        """
        if not self.prunes:
            return token_mask
        if self.pruning_config.prune_mode == "topk":
            keep_counts = token_scoring.topk_keep_counts(sentence_lengths, self.topk_keep_rate)
            return token_scoring.topk_keep_mask(scores, token_mask, keep_counts)
        return token_scoring.threshold_keep_mask(scores, token_mask, ops.stop_gradient(self.threshold))

    def feed_forward(self, residual, attention_output, training=None):
        """The rest of the block after attention: LayerNorm of the residual sum, feed-forward network, LayerNorm.

        Position by position, so it runs on any subset of the tokens (the kept ones, gathered).

        Args:
            residual: `(batch, seq, hidden)`, the block's input hidden states at the same positions.
            attention_output: `(batch, seq, hidden)` from `attend`.
            training: Python bool (feed-forward dropout).

        Returns:
            `(batch, seq, hidden)`, the block's output hidden states.
        """
        hidden = self.self_attention_layer_norm(residual + attention_output)
        feedforward = self.feedforward_output_dense(self.feedforward_intermediate_dense(hidden))
        feedforward = self.feedforward_dropout(feedforward, training=training)
        return self.feedforward_layer_norm(hidden + feedforward)

    def _packed_feed_forward(self, residual, attention_output, kept_positions, live, training=None):
        """`feed_forward` on the kept tokens of every row packed into one sequence, then laid out per row.

        Dropping tokens leaves each row padded to the longest kept row; the feed-forward network (and the
        LayerNorms) runs position by position, so it runs on the live tokens of the whole batch in one
        `(1, tokens, hidden)` sequence instead, no padding in between.

        Args:
            residual, attention_output: `(batch, seq, hidden)`, the block's input and its attention output.
            kept_positions: `(batch, seq')` int32 input position of each output slot, kept tokens first.
            live: `(batch, seq')` bool, the output slots that hold a kept token.
            training: Python bool (feed-forward dropout).

        Returns:
            `(batch, seq', hidden)`: the block's output at the live slots, zeros at the others.
        """
        batch_size, seq_len, hidden_dim = ops.shape(residual)[0], ops.shape(residual)[1], ops.shape(residual)[2]
        new_len = ops.shape(kept_positions)[1]
        slots = ops.nonzero(ops.reshape(live, (-1,)))[0]  # (tokens,) flat output slot b * seq' + j
        rows = ops.arange(batch_size, dtype="int32")[:, None] * seq_len
        sources = ops.take(ops.reshape(rows + kept_positions, (-1,)), slots)  # (tokens,) flat input b * seq + p
        residual, attention_output = (ops.take(ops.reshape(values, (-1, hidden_dim)), sources, axis=0)[None]
                                      for values in (residual, attention_output))  # (1, tokens, hidden)
        outputs = self.feed_forward(residual, attention_output, training)[0]  # (tokens, hidden)
        outputs = ops.scatter(ops.expand_dims(slots, 1), outputs, (batch_size * new_len, hidden_dim))
        return ops.reshape(outputs, (batch_size, new_len, hidden_dim))

    # ------------------------------------------------------------ shape/config
    def compute_output_spec(self, hidden_states, token_mask=None, sentence_lengths=None, training=None):
        batch_size, seq_len, hidden_dim = hidden_states.shape
        out_len = None if (self.drop_tokens and self.prunes) else seq_len
        return {
            "hidden_states": keras.KerasTensor((batch_size, out_len, hidden_dim), dtype=self.compute_dtype),
            "token_mask": keras.KerasTensor((batch_size, out_len), dtype="bool"),
            "kept_positions": keras.KerasTensor((batch_size, out_len), dtype="int32"),
            "token_scores": keras.KerasTensor((batch_size, seq_len), dtype="float32"),
            "keep_mask": keras.KerasTensor((batch_size, seq_len), dtype="float32"),
        }

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "layer_index": self.layer_index,
            "num_layers": self.num_layers,
            "pruning_config": self.pruning_config.to_dict(),
            "drop_tokens": self.drop_tokens,
            "threshold_lr_scale": self.threshold_lr_scale,
            "activation": self.activation,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config


# The layers holding a block's weights, which `build_sharing` takes from the owner, and the settings they fix.
_WEIGHT_LAYERS = ("self_attention_layer", "self_attention_layer_norm", "feedforward_intermediate_dense",
                  "feedforward_output_dense", "feedforward_layer_norm")
_SHARED_SETTINGS = ("intermediate_dim", "num_heads", "activation", "dropout", "layer_norm_epsilon")


def _check_call_shapes(hidden_states, token_mask, sentence_lengths) -> None:
    shape = tuple(hidden_states.shape)
    if len(shape) != 3:
        raise ValueError(f"`hidden_states` must have rank 3 (batch, sequence, hidden). Received: shape={shape}")
    if token_mask is not None and tuple(token_mask.shape) != shape[:2]:
        raise ValueError(f"`token_mask` must have shape (batch, sequence) = {shape[:2]}. "
                         f"Received: shape={tuple(token_mask.shape)}")
    if sentence_lengths is not None and tuple(sentence_lengths.shape) != shape[:1]:
        raise ValueError(f"`sentence_lengths` must have shape (batch,) = {shape[:1]}. "
                         f"Received: shape={tuple(sentence_lengths.shape)}")
