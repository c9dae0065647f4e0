"""`TokenPruningBackbone`: a family's embeddings (BERT, RoBERTa, ALBERT, ...) and `TokenPruningEncoderBlock`s."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ltp_tf.families import get_family
from ltp_tf.layers.encoder_block import TokenPruningEncoderBlock
from ltp_tf.token_pruning_config import TokenPruningConfig


@keras.saving.register_keras_serializable(package="ltp_tf")
class TokenPruningBackbone(keras.Model):
    """An encoder whose blocks prune tokens (weights and names as the family's keras_hub backbone).

    Token pruning is a property of the blocks; the family (`ltp_tf.families`) decides what surrounds
    them: the embeddings (BERT: token + position + segment tables; ALBERT: the same tables
    `embedding_dim` wide, then a dense `embedding_projection` to `hidden_dim`; RoBERTa, XLM-RoBERTa,
    DistilBERT: keras_hub's `TokenAndPositionEmbedding`, no segments, so `segment_ids` are ignored), whether
    the blocks share weights, and the pooling dense layer on the first token (`[CLS]` / `<s>`, never
    pruned): tanh for BERT's and ALBERT's pooler and RoBERTa's classification head, ReLU for DistilBERT's
    pre-classifier.

    ALBERT's blocks share one set of weights (`transformer_layer_0`'s; the other blocks are built with
    `TokenPruningEncoderBlock.build_sharing`), as its one layer group is applied `num_layers` times, while
    each block keeps its own layer index and threshold: pruning stays per layer. The weights exist once in
    `weights`, checkpoints and the weight-pruning masks.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, dropout,
        max_sequence_length, num_segments: as keras_hub's `BertBackbone` (`num_segments` is unused by
            families without segment embeddings).
        family: the Hugging Face `model_type` of the family: `"bert"`, `"roberta"`, `"xlm-roberta"`,
            `"distilbert"`, `"albert"`.
        embedding_dim: width of the embedding tables of a family with factorized embeddings (ALBERT);
            default `hidden_dim`. Must be None for the other families.
        activation: feed-forward activation (`"gelu_exact"` for BERT checkpoints; see
            `ltp_tf.layers.activations.activation_from_hf`).
        layer_norm_epsilon: LayerNorm epsilon.
        pruning_config: a `TokenPruningConfig` (or dict) shared by all blocks.
        drop_tokens: physically remove pruned tokens between blocks (inference speed-up).
        threshold_lr_scale: learning-rate multiplier of the thresholds (see the block).

    Call inputs: a dict with `token_ids` `(batch, seq)` int, and optionally `segment_ids` (default 0) and
    `padding_mask` (default: all real). `seq` must not exceed `max_sequence_length`: tokenizers truncate.

    Returns a dict:
        `sequence_output` `(batch, seq', hidden)` final hidden states of the surviving tokens,
        `pooled_output` `(batch, hidden)` the family's dense projection of the first (`[CLS]`/`<s>`) state,
        `token_mask` `(batch, seq')` which outputs are live tokens,
        `kept_positions` `(batch, seq')` int32 original position of each output,
        `sequence_lengths` `(batch,)` int32 unpadded input lengths,
        `kept_tokens` `(batch, num_layers)` float32 tokens each layer passes on (in soft training, the expected
        number: per token, the product of its soft masks in this and earlier layers, summed),
        `token_scores` list of `(batch, seq_i)` per-layer scores of the tokens entering each layer.
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        activation: str = "gelu_exact",
        layer_norm_epsilon: float = 1e-12,
        pruning_config: TokenPruningConfig | dict | None = None,
        drop_tokens: bool = False,
        threshold_lr_scale: float = 1.0,
        family: str = "bert",
        embedding_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(pruning_config, dict):
            pruning_config = TokenPruningConfig.from_dict(pruning_config)
        pruning_config = pruning_config or TokenPruningConfig()
        family_spec = get_family(family)
        if embedding_dim is not None and not family_spec.factorized_embeddings:
            raise ValueError(f"`embedding_dim` applies to families with factorized embeddings (ALBERT), not "
                             f"family={family!r}. Received: embedding_dim={embedding_dim!r}")
        width = hidden_dim if embedding_dim is None else embedding_dim
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.embeddings = self.segment_embedding = self.embeddings_projection = None
        if family_spec.embeddings_name is None:
            self.token_embedding = keras.layers.Embedding(vocabulary_size, width,
                                                          embeddings_initializer=initializer,
                                                          name="token_embedding", dtype=self.dtype_policy)
            self.position_embedding = keras.layers.Embedding(max_sequence_length, width,
                                                             embeddings_initializer=initializer,
                                                             name="position_embedding", dtype=self.dtype_policy)
        else:
            from keras_hub.layers import TokenAndPositionEmbedding

            self.embeddings = TokenAndPositionEmbedding(
                vocabulary_size=vocabulary_size, sequence_length=max_sequence_length, embedding_dim=width,
                embeddings_initializer=initializer, name=family_spec.embeddings_name, dtype=self.dtype_policy)
            self.token_embedding = self.embeddings.token_embedding
            self.position_embedding = self.embeddings.position_embedding
        if family_spec.has_segments:
            self.segment_embedding = keras.layers.Embedding(num_segments, width,
                                                            embeddings_initializer=initializer,
                                                            name="segment_embedding", dtype=self.dtype_policy)
        if family_spec.factorized_embeddings:
            self.embeddings_projection = keras.layers.Dense(hidden_dim, kernel_initializer=initializer,
                                                            name="embedding_projection", dtype=self.dtype_policy)
        self.embeddings_layer_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon,
                                                                     name="embeddings_layer_norm",
                                                                     dtype=self.dtype_policy)
        self.embeddings_dropout = keras.layers.Dropout(dropout, name="embeddings_dropout", dtype=self.dtype_policy)
        self.transformer_layers = [
            TokenPruningEncoderBlock(
                intermediate_dim=intermediate_dim, num_heads=num_heads, layer_index=i, num_layers=num_layers,
                pruning_config=pruning_config, drop_tokens=drop_tokens, threshold_lr_scale=threshold_lr_scale,
                activation=activation, dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=initializer, name=f"transformer_layer_{i}", dtype=self.dtype_policy)
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(hidden_dim, activation=family_spec.pooler_activation,
                                               kernel_initializer=initializer,
                                               name="pooled_dense", dtype=self.dtype_policy)
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pruning_config = pruning_config
        self.drop_tokens = bool(drop_tokens)
        self.threshold_lr_scale = threshold_lr_scale
        self.family = family_spec.model_type
        self.embedding_dim = embedding_dim

    def build(self, input_shape=None):
        shape = (None, None, self.hidden_dim)
        embedding_shape = (None, None, self.hidden_dim if self.embedding_dim is None else self.embedding_dim)
        if self.embeddings is not None:
            self.embeddings.build((None, None))
        else:
            self.token_embedding.build((None, None))
            self.position_embedding.build((None, None))
        if self.segment_embedding is not None:
            self.segment_embedding.build((None, None))
        self.embeddings_layer_norm.build(embedding_shape)
        if self.embeddings_projection is not None:
            self.embeddings_projection.build(embedding_shape)
        first, *others = self.transformer_layers
        first.build(shape)
        shares_weights = get_family(self.family).shares_layer_weights
        for block in others:
            if shares_weights:
                block.build_sharing(first)
            else:
                block.build(shape)
        self.pooled_dense.build((None, self.hidden_dim))
        self.built = True

    @property
    def token_pruning_blocks(self) -> list[TokenPruningEncoderBlock]:
        return list(self.transformer_layers)

    def set_masking_mode(self, masking_mode: str) -> None:
        """Moves every block to `"soft"` or `"hard"` masking. Recompile models that train this backbone."""
        for block in self.transformer_layers:
            block.set_masking_mode(masking_mode)
        self.pruning_config = self.pruning_config.replace(masking_mode=masking_mode)

    def set_drop_tokens(self, drop_tokens: bool) -> None:
        """Turns physical token removal on or off (same weights, same kept tokens)."""
        self.drop_tokens = bool(drop_tokens)
        for block in self.transformer_layers:
            block.drop_tokens = self.drop_tokens

    def embed(self, token_ids, segment_ids, training=None):
        """The first block's input `(batch, seq, hidden)`: LayerNormed embeddings, dropout, ALBERT's projection."""
        if self.embeddings is not None:
            embeddings = self.embeddings(token_ids)
        else:
            positions = ops.arange(ops.shape(token_ids)[1], dtype="int32")[None, :]
            embeddings = self.token_embedding(token_ids) + self.position_embedding(positions)
        if self.segment_embedding is not None:
            embeddings = embeddings + self.segment_embedding(segment_ids)
        embeddings = self.embeddings_dropout(self.embeddings_layer_norm(embeddings), training=training)
        if self.embeddings_projection is not None:
            embeddings = self.embeddings_projection(embeddings)
        return embeddings

    def pool(self, sequence_output):
        """The pooled output `(batch, hidden)`: the family's dense layer on the first token (`[CLS]`, `<s>`)."""
        return self.pooled_dense(sequence_output[:, 0, :])

    def call(self, inputs, training=None):
        token_ids, segment_ids, padding_mask = self._unpack_inputs(inputs)
        batch_size, seq_len = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        positions = ops.arange(seq_len, dtype="int32")[None, :]
        hidden_states = self.embed(token_ids, segment_ids, training=training)

        token_mask = padding_mask
        sentence_lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=1)
        kept_positions = ops.broadcast_to(positions, (batch_size, seq_len))
        kept_tokens, token_scores = [], []
        alive = ops.cast(padding_mask, "float32")  # (batch, seq): how much of each token is still there
        for block in self.transformer_layers:
            outputs = block(hidden_states, token_mask, sentence_lengths, training=training)
            hidden_states, token_mask = outputs["hidden_states"], outputs["token_mask"]
            kept_positions = ops.take_along_axis(kept_positions, outputs["kept_positions"], axis=1)
            # Hard masks already exclude dead tokens; soft masks compound (a token half-pruned twice is a quarter left).
            survived = alive * outputs["keep_mask"]  # (batch, seq)
            kept_tokens.append(ops.sum(survived, axis=1))
            alive = ops.take_along_axis(survived, outputs["kept_positions"], axis=1)
            token_scores.append(outputs["token_scores"])

        pooled_output = self.pool(hidden_states)
        return {
            "sequence_output": hidden_states,
            "pooled_output": pooled_output,
            "token_mask": token_mask,
            "kept_positions": kept_positions,
            "sequence_lengths": sentence_lengths,
            "kept_tokens": ops.stack(kept_tokens, axis=1),
            "token_scores": token_scores,
        }

    def _unpack_inputs(self, inputs):
        if not isinstance(inputs, dict):
            inputs = {"token_ids": inputs}
        if "token_ids" not in inputs:
            raise ValueError("Backbone inputs must be a dict with `token_ids` (and optionally `segment_ids`, "
                             f"`padding_mask`). Received keys: {sorted(inputs)}")
        token_ids = inputs["token_ids"]
        shape = tuple(token_ids.shape)
        if len(shape) != 2:
            raise ValueError(f"`token_ids` must have rank 2 (batch, sequence). Received: shape={shape}")
        if shape[0] == 0:
            raise ValueError("`token_ids` is an empty batch. Received: shape=" + str(shape))
        if shape[1] is not None and shape[1] > self.max_sequence_length:
            raise ValueError(f"`token_ids` has {shape[1]} positions, more than max_sequence_length="
                             f"{self.max_sequence_length}. Truncate inputs (the tokenizers of ltp_tf.data do).")
        segment_ids = inputs.get("segment_ids")
        padding_mask = inputs.get("padding_mask")
        for name, value in (("segment_ids", segment_ids), ("padding_mask", padding_mask)):
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"`{name}` must have the shape of `token_ids` {shape}. "
                                 f"Received: shape={tuple(value.shape)}")
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        padding_mask = (ops.ones_like(token_ids, dtype="bool") if padding_mask is None
                        else ops.cast(padding_mask, "bool"))
        return token_ids, segment_ids, padding_mask

    def compute_output_spec(self, inputs, training=None):
        token_ids = inputs["token_ids"] if isinstance(inputs, dict) else inputs
        batch_size, seq_len = token_ids.shape
        out_len = None if self.drop_tokens and self.pruning_config.prune_mode != "none" else seq_len
        float_dtype = self.compute_dtype
        return {
            "sequence_output": keras.KerasTensor((batch_size, out_len, self.hidden_dim), dtype=float_dtype),
            "pooled_output": keras.KerasTensor((batch_size, self.hidden_dim), dtype=float_dtype),
            "token_mask": keras.KerasTensor((batch_size, out_len), dtype="bool"),
            "kept_positions": keras.KerasTensor((batch_size, out_len), dtype="int32"),
            "sequence_lengths": keras.KerasTensor((batch_size,), dtype="int32"),
            "kept_tokens": keras.KerasTensor((batch_size, self.num_layers), dtype="float32"),
            "token_scores": [keras.KerasTensor((batch_size, None), dtype="float32") for _ in range(self.num_layers)],
        }

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "pruning_config": self.pruning_config.to_dict(),
            "drop_tokens": self.drop_tokens,
            "threshold_lr_scale": self.threshold_lr_scale,
            "family": self.family,
            "embedding_dim": self.embedding_dim,
        })
        return config
