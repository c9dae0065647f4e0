"""Model surgery: the same weights under other settings, and weights copied by path.

- `with_settings(model, pruning_config=..., drop_tokens=..., threshold_lr_scale=..., dtype=..., dropout=...)`:
  a new `TokenPruningClassifier` built from `model`'s config with the given settings changed, holding
  `model`'s weights (every one, the pruning thresholds too). Training stages, the float32 copy a checkpoint
  stores, the benchmark's dense twin and the distillation teacher are all made this way.
- `without_token_pruning(model)`: `with_settings` for the dense twin of a pruned model
  (`prune_mode="none"`, hard masking, no token removal).
- `copy_weights_by_path(source, target)`: copies weights between two models by variable path (from each
  model's own sublayers down), checking every path and shape before anything is assigned. The pretrained loaders
  (`ltp_tf.models.pretrained`) use it with keras_hub's paths mapped onto ours.

This is the only module that edits a serialized classifier's config.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras

from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.token_pruning_config import TokenPruningConfig


def with_settings(model: TokenPruningClassifier, *, pruning_config: TokenPruningConfig | None = None,
                  drop_tokens: bool | None = None, threshold_lr_scale: float | None = None,
                  dtype: str | None = None, dropout: float | None = None,
                  name: str | None = None) -> TokenPruningClassifier:
    """A new, built classifier with `model`'s weights and the given settings changed (None: keep `model`'s).

    Args:
        model: a built `TokenPruningClassifier`.
        pruning_config: the backbone's `TokenPruningConfig`.
        drop_tokens: physical token removal between blocks.
        threshold_lr_scale: the thresholds' learning-rate multiplier.
        dtype: the dtype policy of the classifier and its backbone (e.g. `"float32"`, `"mixed_bfloat16"`).
            Weights are converted to the new variable dtype.
        dropout: the dropout rate of the backbone and of the classifier head.
        name: the new model's name (default: `model`'s).

    The copy is uncompiled. Every weight, the pruning thresholds (`threshold_delta`, `frozen_threshold`)
    included, keeps its value, so a stage that wants other thresholds sets them on the copy.
    """
    if not isinstance(model, TokenPruningClassifier):
        raise ValueError("`model` must be a TokenPruningClassifier. "
                         f"Received: model of type {type(model).__name__}")
    if not model.built:
        raise ValueError("`model` must be built (call it once or load it) before it is copied.")
    if pruning_config is not None and not isinstance(pruning_config, TokenPruningConfig):
        raise ValueError("`pruning_config` must be a TokenPruningConfig. "
                         f"Received: pruning_config of type {type(pruning_config).__name__}")
    config: dict[str, Any] = model.get_config()
    backbone_config = config["backbone"]["config"]
    if pruning_config is not None:
        backbone_config["pruning_config"] = pruning_config.to_dict()
    if drop_tokens is not None:
        backbone_config["drop_tokens"] = bool(drop_tokens)
    if threshold_lr_scale is not None:
        backbone_config["threshold_lr_scale"] = float(threshold_lr_scale)
    if dtype is not None:
        config["dtype"] = backbone_config["dtype"] = dtype
    if dropout is not None:
        config["dropout"] = backbone_config["dropout"] = dropout
    if name is not None:
        config["name"] = name
    clone = TokenPruningClassifier.from_config(config)
    clone.build()
    copy_weights_by_path(model, clone)
    return clone


def without_token_pruning(model: TokenPruningClassifier, *, name: str | None = None) -> TokenPruningClassifier:
    """The dense twin of `model`: same weights, `prune_mode="none"` with hard masking, no token removal."""
    if not isinstance(model, TokenPruningClassifier):
        raise ValueError("`model` must be a TokenPruningClassifier. "
                         f"Received: model of type {type(model).__name__}")
    dense = model.backbone.pruning_config.replace(prune_mode="none", masking_mode="hard")
    return with_settings(model, pruning_config=dense, drop_tokens=False, name=name)


def copy_weights_by_path(source: keras.Model, target: keras.Model, *, path_key: Callable[[str], str] | None = None,
                         target_only: Sequence[str] = ()) -> None:
    """Copies every weight of `source` into the `target` weight with the same path.

    Paths are compared from the model's own sublayer down (`token_pruning_backbone/transformer_layer_0/...`,
    `logits/kernel`): what Keras puts before that depends on how the model was built (the model's name when
    it built the sublayer, nothing when the sublayer was built on its own or deserialized). `path_key` maps
    a variable's full path to the compared one instead, for both models. Every source weight must have a
    target weight of the same path and shape, and every target weight must receive a value, except those
    with a path part (a layer or variable name) in `target_only`. All of it is checked before anything is
    assigned, so a failed copy leaves `target` as it was. Values are converted to the target variable's dtype.
    """
    sources = {(path_key or _path_below(source))(variable.path): variable for variable in source.weights}
    targets = {(path_key or _path_below(target))(variable.path): variable for variable in target.weights}
    unmatched = sorted(set(sources) - set(targets))
    if unmatched:
        raise ValueError(f"`target` must have a weight at every path of `source`'s weights. Received: no target "
                         f"weight at {unmatched[:8]}; the target's paths are {sorted(targets)[:8]}...")
    for path, variable in sources.items():
        if tuple(targets[path].shape) != tuple(variable.shape):
            raise ValueError(f"The target weight {path!r} must have the shape of the source's, "
                             f"{tuple(variable.shape)}. Received: shape={tuple(targets[path].shape)}")
    unset = [path for path in targets
             if path not in sources and not set(path.split("/")) & set(target_only)]
    if unset:
        raise ValueError(f"`source` must have a value for every weight of `target`. Received: no source "
                         f"weight at {unset[:8]}")
    for path, variable in sources.items():
        targets[path].assign(keras.ops.convert_to_numpy(variable))


def _path_below(model: keras.Model) -> Callable[[str], str]:
    """Maps a weight path of `model` to its part from one of `model`'s own sublayers down.

    `token_pruning_classifier_3/token_pruning_backbone/x` and `token_pruning_backbone/x` -> `token_pruning_backbone/x`.
    """
    names = {layer.name for layer in model.layers}

    def below(path: str) -> str:
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part in names:
                return "/".join(parts[i:])
        return path

    return below
