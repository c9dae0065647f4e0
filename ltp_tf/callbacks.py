"""Keras callbacks for token pruning: the soft-to-hard switch and per-layer kept-token logging."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ltp_tf.layers.encoder_block import TokenPruningEncoderBlock
from ltp_tf.validation import check_int_at_least


def find_pruning_blocks(model: keras.Model) -> list[TokenPruningEncoderBlock]:
    """Every `TokenPruningEncoderBlock` inside `model`, in layer order."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, TokenPruningEncoderBlock)]


def set_masking_mode(model: keras.Model, masking_mode: str, update_trainable: bool = True) -> None:
    """Moves every pruning block of `model` to `masking_mode` and forces its step functions to be rebuilt.

    Call `model.compile(...)` afterwards when `update_trainable` changed what trains (outside `fit`).
    """
    blocks = find_pruning_blocks(model)
    if not blocks:
        raise ValueError(f"Model {model.name!r} has no TokenPruningEncoderBlock to switch.")
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()  # JAX keeps weights outside the variables during fit: write them back first.
    for block in blocks:
        block.set_masking_mode(masking_mode, update_trainable=update_trainable)
    for layer in model._flatten_layers(include_self=True):
        if getattr(layer, "pruning_config", None) is not None and not isinstance(layer, TokenPruningEncoderBlock):
            layer.pruning_config = layer.pruning_config.replace(masking_mode=masking_mode)
    # The mode is read when a step is traced: rebuild the step functions so the next step retraces.
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    model.test_function = model.predict_function = None
    if hasattr(model, "_jax_state_synced"):
        model._jax_state_synced = True  # JAX's fit loop re-reads the state from the variables


class SoftToHardSwitch(keras.callbacks.Callback):
    """Moves every pruning block from soft to hard masking (freezing the thresholds) at an epoch or step.

    Args:
        epoch: 0-based epoch at whose start to switch, or None.
        step: global training step at which to switch, or None. Exactly one of the two must be set.
    """

    def __init__(self, epoch: int | None = None, step: int | None = None):
        super().__init__()
        if (epoch is None) == (step is None):
            raise ValueError(f"Set exactly one of `epoch` and `step`. Received: epoch={epoch}, step={step}")
        for name, value in (("epoch", epoch), ("step", step)):
            if value is not None:
                check_int_at_least(name, value, 0)
        self.epoch = epoch
        self.step = step
        self.switched = False
        self._global_step = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.epoch is not None and epoch >= self.epoch:
            self._switch()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.step is not None and self._global_step >= self.step:
            self._switch()
        self._global_step += 1

    def _switch(self) -> None:
        if not self.switched:
            # Inside fit the optimizer's variable list is fixed: keep what trains, freeze by value.
            set_masking_mode(self.model, "hard", update_trainable=False)
            self.switched = True


class KeptTokenLogger(keras.callbacks.Callback):
    """Adds `kept_ratio/layer_i` (tokens a layer passes on / unpadded tokens) to the logs each epoch.

    Args:
        inputs: a batch of backbone inputs (dict of arrays) to measure on, in inference mode.
        backbone: the `TokenPruningBackbone` to run; default: the model's `backbone` attribute.
    """

    def __init__(self, inputs: dict[str, Any], backbone: keras.Model | None = None):
        super().__init__()
        self.inputs = inputs
        self.backbone = backbone
        self.history: list[list[float]] = []

    def kept_ratios(self) -> list[float]:
        backbone = self.backbone or self.model.backbone
        outputs = backbone(self.inputs, training=False)
        kept = np.asarray(keras.ops.convert_to_numpy(outputs["kept_tokens"]))
        lengths = np.asarray(keras.ops.convert_to_numpy(outputs["sequence_lengths"]), dtype=np.float64)
        return [float(r) for r in kept.sum(axis=0) / lengths.sum()]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        ratios = self.kept_ratios()
        self.history.append(ratios)
        if logs is not None:
            for i, ratio in enumerate(ratios):
                logs[f"kept_ratio/layer_{i}"] = ratio
