"""`TokenPruningClassifier`: a classification / regression head on a `TokenPruningBackbone`."""

from __future__ import annotations

from typing import Any

import keras

from ltp_tf.models.backbone import TokenPruningBackbone
from ltp_tf.validation import check_int_at_least


@keras.saving.register_keras_serializable(package="ltp_tf")
class TokenPruningClassifier(keras.Model):
    """Logits from the backbone's pooled `[CLS]` output, as `BertTextClassifier(backbone, num_classes)`.

    `num_classes=1` is regression (STS-B): the single output is the predicted score. The model is a
    Keras layer too, so it can be called inside a user's own functional or subclassed model.

    Args:
        backbone: a `TokenPruningBackbone` instance.
        num_classes: number of classes (>= 2), or 1 for regression.
        dropout: dropout before the output layer.
    """

    def __init__(self, backbone: TokenPruningBackbone, num_classes: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        check_int_at_least("num_classes", num_classes, 1, minimum_text="1 (1 = regression)")
        if not isinstance(backbone, TokenPruningBackbone):
            raise ValueError("`backbone` must be a TokenPruningBackbone. "
                             f"Received: backbone of type {type(backbone).__name__}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = dropout
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=self.dtype_policy)
        # Logits are computed in float32 for a stable loss under mixed precision.
        self.output_dense = keras.layers.Dense(num_classes, name="logits", dtype="float32",
                                               kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def build(self, input_shape=None):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        self.output_dense.build((None, self.backbone.hidden_dim))
        self.built = True

    def call(self, inputs, training=None):
        pooled = self.backbone(inputs, training=training)["pooled_output"]
        return self.head(pooled, training=training)

    def head(self, pooled_output, training=None):
        """The logits from the backbone's `pooled_output`: what `call` applies after the backbone.

        For callers that run the backbone themselves (to keep its other outputs, or piece by piece).

        Args:
            pooled_output: `(batch, hidden)`, the backbone's (or `backbone.pool`'s) output.
            training: Python bool (the head's dropout); None: Keras's default (off outside `fit`).

        Returns:
            `(batch, num_classes)` float32 logits (the predicted score for regression).
        """
        return self.output_dense(self.output_dropout(pooled_output, training=training))

    def compute_output_spec(self, inputs, training=None):
        token_ids = inputs["token_ids"] if isinstance(inputs, dict) else inputs
        return keras.KerasTensor((token_ids.shape[0], self.num_classes), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
        })
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TokenPruningClassifier":
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
